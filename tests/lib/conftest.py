"""Shared fixtures for the lib tests: fast sleeps, a clean client cache, and a fixed token."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from lib.intercom import client as client_module
from lib.intercom.client import IntercomClient

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMAS = FIXTURES / "schemas"
TOKEN = "dG9rOjEyMzQ1Njc4OTA6c2VjcmV0LXRva2VuLXZhbHVl"
US = "https://api.intercom.io"


@pytest.fixture(autouse=True)
def _clean_cache():
    IntercomClient.clear_cache()
    yield
    IntercomClient.clear_cache()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """Record every retry sleep instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr(client_module, "_module_sleep", recorded.append)
    return recorded


@pytest.fixture
def cfg():
    return {"accessToken": TOKEN}


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
