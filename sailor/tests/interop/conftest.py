"""The real elastic.io Node sailor (pinned in node/package-lock.json), installed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticio_sailor.testing.node import ensure_node_sailor


@pytest.fixture(scope="session")
def node_sailor() -> Path:
    return ensure_node_sailor()
