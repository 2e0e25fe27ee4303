"""Fixtures for the trigger tests: a fake Intercom on loopback, and a temporary component root.

In-process runs go through tests/in_process.py. The command-line harness tests run the real sailor in a
subprocess against a temporary component root: a component.json built from tools/component_base.json
(credentials + the "triggers" section this area owns) and a copy of lib/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
