"""Fixtures: the elastic.io broker topology (`broker`, from the harness plugin), a fake platform API and
worker subprocesses running the fixture component, all torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticio_sailor.testing.amqp import Broker
from elasticio_sailor.testing.elasticio import FakePlatform, worker_env
from elasticio_sailor.testing.process import WorkerProcess

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "component"


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
        worker = WorkerProcess(worker_env(broker, platform, function, **env), FIXTURE)
        started.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in started:
        worker.kill()
