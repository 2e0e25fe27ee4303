"""Where the OIH tests' two twins live (our Python twin, the Node twin under the real ferryman) and how the
ferryman is started; the broker, the tokens and our worker come from `elasticio_sailor.testing`."""

from __future__ import annotations

import shutil
from pathlib import Path

from elasticio_sailor.testing.process import WorkerProcess

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
TWIN_DIR = HERE / "fixtures" / "twin"
FERRYMAN = NODE_DIR / "node_modules" / "@openintegrationhub" / "ferryman" / "runGlobal.js"


def start_ferryman(env: dict[str, str], log_path: Path) -> WorkerProcess:
    """The real ferryman running the Node twin (COMPONENT_PATH is joined to cwd, so cwd is the twin)."""
    node = shutil.which("node") or "node"
    env = {"LOG_LEVEL": "info", **env, "ELASTICIO_COMPONENT_PATH": ""}
    return WorkerProcess(env, NODE_DIR, cmd=[node, str(FERRYMAN)], log_path=log_path)
