"""Fixtures of the OIH tests: RabbitMQ reachability, the Node side (`npm ci` when node_modules is missing),
fake OIH services. Under CI=true nothing is skipped: a missing broker, Node or npm fails the run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from urllib.parse import urlsplit

import pytest

from tests.oih.fake_oih import FakeOih
from tests.oih.harness import NODE_DIR, Broker, Topology, amqp_url

CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    url = urlsplit(amqp_url())
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 5672), timeout=3).close()
    except OSError as exc:
        _unavailable(f"RabbitMQ is not reachable at {url.hostname}:{url.port}: {exc}")
    return amqp_url()


@pytest.fixture(scope="session")
def ferryman_installed() -> None:
    """The real ferryman from the committed lockfile; `npm ci` when node_modules is missing."""
    if not shutil.which("node") or not shutil.which("npm"):
        _unavailable("node/npm are not installed")
    marker = NODE_DIR / "node_modules" / "@openintegrationhub" / "ferryman" / "runGlobal.js"
    if not marker.exists():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {NODE_DIR}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    assert marker.exists()


@pytest.fixture
def fake_oih():
    with FakeOih() as oih:
        yield oih


@pytest.fixture
def broker(rabbitmq: str):
    b = Broker(Topology())
    b.setup()
    try:
        yield b
    finally:
        b.teardown()
