"""A 401/403 from Intercom asks the sailor for fresh credentials (elasticio_sailor.credentials) and retries
that one call once; real HTTP to the fake Intercom, through the generated actions and the sailor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticio_sailor import execute
from elasticio_sailor.credentials import register_source, unregister_source

from tools.fake_intercom import FakeIntercom

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def intercom() -> Iterator[FakeIntercom]:
    with FakeIntercom(token="token-new", seed=False) as fake:
        yield fake


class Source:
    """Plays a caching dialect: knows cfgs holding `old`, answers with `new` (or with None)."""

    def __init__(self, old: str, new: str | None) -> None:
        self.old, self.new, self.asked = old, new, 0

    def __call__(self, cfg: Any) -> dict | None:
        if cfg.get("accessToken") != self.old:
            return None
        self.asked += 1
        return None if self.new is None else {**cfg, "accessToken": self.new}


@pytest.fixture
def source() -> Iterator[list[Source]]:
    registered: list[Source] = []
    yield registered
    for s in registered:
        unregister_source(s)


def use(registered: list[Source], old: str, new: str | None) -> Source:
    s = Source(old, new)
    register_source(s)
    registered.append(s)
    return s


def cfg_for(fake: FakeIntercom, token: str) -> dict[str, Any]:
    return {"server": "custom", "otherServer": fake.url, "accessToken": token}


def show(fake: FakeIntercom, contact_id: str, token: str) -> list[dict]:
    return execute("ShowContact", {"data": {"id": contact_id}}, cfg_for(fake, token), component_dir=REPO)


def statuses(fake: FakeIntercom) -> list[str]:
    return [r.header("Authorization") for r in fake.requests]


def test_a_rotated_token_is_replaced_and_the_call_retried_once(intercom, source) -> None:
    contact = intercom.add_contact(email="a@example.com")
    s = use(source, "token-old", "token-new")
    events = show(intercom, contact["id"], "token-old")
    assert [e["event"] for e in events] == ["data"] and events[0]["data"]["id"] == contact["id"]
    assert s.asked == 1
    assert statuses(intercom) == ["Bearer token-old", "Bearer token-new"]


def test_without_fresh_credentials_the_401_is_the_error(intercom, source) -> None:
    contact = intercom.add_contact(email="a@example.com")
    s = use(source, "token-old", None)
    events = show(intercom, contact["id"], "token-old")
    assert [e["event"] for e in events] == ["error"] and events[0]["error"]["status"] == 401
    assert s.asked == 1 and statuses(intercom) == ["Bearer token-old"]


def test_other_errors_do_not_ask_for_credentials(intercom, source) -> None:
    s = use(source, "token-new", "token-other")
    events = show(intercom, "missing", "token-new")
    assert [e["event"] for e in events] == ["error"] and events[0]["error"]["status"] == 404
    assert s.asked == 0 and len(intercom.requests) == 1


def test_a_403_is_a_refusal_too(intercom, source) -> None:
    contact = intercom.add_contact(email="a@example.com")
    intercom.fail_next(403)
    s = use(source, "token-new", "token-new2")
    intercom_token = intercom.token
    intercom.token = "token-new2"
    try:
        events = execute(
            "ShowContact",
            {"data": {"id": contact["id"]}},
            cfg_for(intercom, intercom_token),
            component_dir=REPO,
        )
    finally:
        intercom.token = intercom_token
    assert [e["event"] for e in events] == ["data"] and s.asked == 1


def test_a_list_refused_on_its_first_page_is_retried_and_emitted_once(intercom, source) -> None:
    for i in range(3):
        intercom.add_contact(email=f"c{i}@example.com")
    s = use(source, "token-old", "token-new")
    events = execute("ListContacts", {"data": {}}, cfg_for(intercom, "token-old"), component_dir=REPO)
    assert [e["event"] for e in events] == ["data"]
    assert len(events[0]["data"]["data"]) == 3 and s.asked == 1
