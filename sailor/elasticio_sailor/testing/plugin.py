"""The pytest plugin of the harness: what happens when a prerequisite is missing, in one place.

A missing RabbitMQ, node/npm or image tool skips a test on a developer's machine and fails it under
CI=true, where nothing may be skipped. Tests state a prerequisite with `unavailable(reason)` (from a
fixture) or the `requires(condition, reason=...)` marker; neither `pytest.skip` nor `skipif` is used
directly, so the rule cannot be bypassed. Load it with `pytest_plugins = ["elasticio_sailor.testing.plugin"]`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .amqp import Broker, Topology, amqp_url
from .elasticio import ElasticioTopology

CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """A prerequisite is missing: skip locally, fail under CI=true."""
    if CI:
        pytest.fail(reason)
    pytest.skip(reason)


def require_tools(*names: str) -> None:
    """Every named program is on PATH, or the test is unavailable."""
    missing = [name for name in names if not shutil.which(name)]
    if missing:
        unavailable(f"{', '.join(missing)} not installed")


def npm_ci(node_dir: Path, marker: Path) -> Path:
    """`npm ci` from the committed lock file unless `marker` (a file the install creates) exists."""
    require_tools("node", "npm")
    if not marker.exists():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=node_dir,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {node_dir}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    assert marker.exists(), f"{marker} missing after npm ci"
    return marker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(condition, reason): the test needs the condition (skips locally, fails in CI)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires"):
        if not mark.args[0]:
            unavailable(mark.kwargs["reason"])


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    """The broker's URL, once it accepts TCP connections."""
    url = urlsplit(amqp_url())
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 5672), timeout=3).close()
    except OSError as exc:
        unavailable(f"RabbitMQ is not reachable at {url.hostname}:{url.port}: {exc}")
    return amqp_url()


@pytest.fixture
def topology() -> Topology:
    """The topology `broker` declares; a test folder of another dialect overrides this fixture."""
    return ElasticioTopology()


@pytest.fixture
def broker(rabbitmq: str, topology: Topology) -> Iterator[Broker]:
    """`topology` declared on the real broker, deleted again after the test."""
    with Broker(topology, rabbitmq) as b:
        yield b
