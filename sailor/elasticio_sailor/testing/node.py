"""The real elastic.io Node sailor that the interop tests and the benchmarks run beside ours, and the fixture
component each side runs.

They live in the sailor's source tree (`sailor/tests`), found from this package's own place: the harness is
used from a checkout, where the tests are.
"""

from __future__ import annotations

from pathlib import Path

from .plugin import npm_ci

SAILOR_TESTS = Path(__file__).resolve().parents[2] / "tests"
NODE_DIR = SAILOR_TESTS / "interop" / "node"  # package.json and the lock file of the Node sailor
NODE_SAILOR = NODE_DIR / "node_modules" / "elasticio-sailor-nodejs" / "run.js"
NODE_COMPONENT = NODE_DIR / "component"
PYTHON_COMPONENT = SAILOR_TESTS / "integration" / "fixtures" / "component"


def ensure_node_sailor() -> Path:
    """`npm ci` from the committed lock file when node_modules is missing; the path of run.js."""
    return npm_ci(NODE_DIR, NODE_SAILOR)
