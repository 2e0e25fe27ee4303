"""Fixtures of the OIH tests: `broker` declares the OIH topology, the Node side is installed (`npm ci`
when node_modules is missing), fake OIH services. Missing prerequisites go through the harness plugin."""

from __future__ import annotations

import pytest
from elasticio_sailor.testing.fake_oih import FakeOih
from elasticio_sailor.testing.oih import OihTopology
from elasticio_sailor.testing.plugin import npm_ci

from .harness import FERRYMAN, NODE_DIR


@pytest.fixture
def topology() -> OihTopology:
    return OihTopology()


@pytest.fixture(scope="session")
def ferryman_installed() -> None:
    """The real ferryman from the committed lockfile; `npm ci` when node_modules is missing."""
    npm_ci(NODE_DIR, FERRYMAN)


@pytest.fixture
def fake_oih():
    with FakeOih() as oih:
        yield oih
