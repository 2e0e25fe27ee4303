"""Fixtures for the trigger tests: a fake Intercom on loopback, and a way to run a trigger in-process.

In-process runs call the module's ``process`` with a small stand-in for the sailor's ``self`` (emit + logger),
so each test sees every emitted event and can stop a run half-way. The command-line harness tests run the
real sailor in a subprocess against a temporary component root: a component.json built from
tools/component_base.json (credentials + the "triggers" section this area owns) and a copy of lib/.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from lib.intercom import client as client_module
from lib.intercom.client import IntercomClient
from tools.fake_intercom import FakeIntercom

ROOT = Path(__file__).resolve().parents[2]
BASE = 1717000000  # 2024-05-29T16:26:40Z, a fixed "past" for seeded objects


@pytest.fixture(autouse=True)
def _clean_client_cache(monkeypatch):
    IntercomClient.clear_cache()
    monkeypatch.setattr(client_module, "_module_sleep", lambda s: None)  # retries without waiting
    yield
    IntercomClient.clear_cache()


@pytest.fixture(scope="session")
def component_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("component")
    base = json.loads((ROOT / "tools" / "component_base.json").read_text(encoding="utf-8"))
    component = {k: v for k, v in base.items() if k != "triggers"}
    component["triggers"] = base["triggers"]
    component["actions"] = {}
    (root / "component.json").write_text(json.dumps(component, indent=2), encoding="utf-8")
    shutil.copytree(ROOT / "lib", root / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="session")
def _fake_server():
    with FakeIntercom(seed=False) as server:  # one server: stopping one costs half a second
        yield server


@pytest.fixture
def fake(_fake_server):
    """The fake Intercom, emptied: no objects, no recorded requests, default page sizes."""
    server = _fake_server
    server.db.clear()
    server.clear_requests()
    server.per_page, server.now, server.delay, server.scroll_page_size = None, None, 0.0, 15
    return server


@pytest.fixture
def cfg(fake) -> dict:
    return {"accessToken": fake.token, "server": "custom", "otherServer": fake.url, "maxRetries": 0}


class Crash(Exception):
    """Stands for the process dying (the sailor never sees the rest of the run)."""


class Runner:
    """The parts of the sailor's ``self`` a trigger uses; ``crash_after`` data events, raise Crash."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.logger = logging.getLogger("tests.triggers")
        self.crash_after = crash_after

    def emit(self, kind: str, payload: Any) -> None:
        if kind == "data" and self.crash_after is not None and len(self.data) >= self.crash_after:
            raise Crash()
        self.events.append((kind, copy.deepcopy(payload)))

    @property
    def data(self) -> list[Any]:
        return [p for k, p in self.events if k == "data"]

    @property
    def snapshot(self) -> dict | None:
        """The last snapshot emitted (what the platform would hand to the next run)."""
        snaps = [p for k, p in self.events if k == "snapshot"]
        return snaps[-1] if snaps else None


def run(module, cfg: dict, snapshot: dict | None = None, msg: Any = None, crash_after: int | None = None):
    """Run ``module.process`` once; returns the Runner (events, data, last snapshot)."""
    from elasticio_sailor import Message

    runner = Runner(crash_after)
    runner.crashed = False
    try:
        result = module.process(runner, Message.from_any(msg or {}), dict(cfg), copy.deepcopy(snapshot))
    except Crash:
        runner.crashed = True
        return runner
    if result is not None:
        runner.events.append(("data", result))
    return runner


def ids(runner: Runner) -> list[str]:
    return [m["data"]["id"] for m in runner.data]
