"""Where the real elastic.io Node sailor lives (interop tests, benchmark), and how to install it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_SAILOR = NODE_DIR / "node_modules" / "elasticio-sailor-nodejs" / "run.js"
NODE_COMPONENT = NODE_DIR / "component"


def ensure_node_sailor() -> Path:
    """`npm ci` from the committed lock file when node_modules is missing; the path of run.js."""
    if not NODE_SAILOR.is_file():
        npm = shutil.which("npm")
        assert npm, "npm is needed for the interop tests (Node and npm are part of the test machine)"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_DIR,
            check=True,
            timeout=600,
            capture_output=True,
        )
    assert NODE_SAILOR.is_file(), f"{NODE_SAILOR} missing after npm ci"
    return NODE_SAILOR
