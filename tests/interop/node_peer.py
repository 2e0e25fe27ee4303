"""Where the real elastic.io Node sailor lives (interop tests, benchmark), how to install it, and the sailor's
fixture component our worker runs opposite it."""

from __future__ import annotations

from pathlib import Path

from elasticio_sailor.testing.plugin import npm_ci

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_SAILOR = NODE_DIR / "node_modules" / "elasticio-sailor-nodejs" / "run.js"
NODE_COMPONENT = NODE_DIR / "component"
PYTHON_COMPONENT = ROOT / "sailor" / "tests" / "integration" / "fixtures" / "component"


def ensure_node_sailor() -> Path:
    """`npm ci` from the committed lock file when node_modules is missing; the path of run.js."""
    return npm_ci(NODE_DIR, NODE_SAILOR)
