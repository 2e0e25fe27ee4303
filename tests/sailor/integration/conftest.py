"""Fixtures: a unique broker topology, a fake platform API and worker subprocesses, all torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .harness import Broker, FakePlatform, WorkerProcess, worker_env


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with FakePlatform(
        {
            "config": {"apiToken": "tok-secret-value", "region": "eu", "_account": "acc-1"},
            "snapshot": {"cursor": 1},
            "is_passthrough": False,
            "variables": {},
        }
    ) as p:
        yield p


@pytest.fixture
def start_worker(broker: Broker, platform: FakePlatform) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(function: str = "script", wait: bool = True, **env: Any) -> WorkerProcess:
        worker = WorkerProcess(worker_env(broker, platform, function, **env))
        started.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in started:
        worker.kill()
