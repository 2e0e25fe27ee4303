"""Pagination always ends: every style, through real actions and polling triggers, against a server that
misbehaves over real HTTP (the fake Intercom's scripted `answer` mode). Each run must stop within a few
requests, emit what it had, then exactly one error; a refused scroll is named, and the companies trigger
loses nothing."""

from __future__ import annotations

from typing import Any

import pytest
from elasticio_sailor import execute, execute_full

from lib.intercom.client import IntercomClient
from tools.fake_intercom import Answer, FakeIntercom, Recorded
from tools.generate import ROOT

pytestmark = pytest.mark.timeout(60)
BASE = 1717000000


@pytest.fixture(autouse=True)
def _fresh_clients():
    IntercomClient.clear_cache()
    yield
    IntercomClient.clear_cache()


def page(ids: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "list",
        "data": [{"type": "thing", "id": i, "updated_at": BASE + 10} for i in ids],
        **extra,
    }


def repeated_cursor(request: Recorded):
    return Answer.json(page([f"c{len(request.query)}"], pages={"next": {"starting_after": "same"}}))


def cycling_cursor(request: Recorded):  # A -> B -> A -> ...
    after = request.query.get("starting_after") or (request.body or {}).get("pagination", {}).get(
        "starting_after"
    )
    nxt = {None: "A", "A": "B", "B": "A"}[after]
    return Answer.json(page([f"after-{after}"], pages={"next": {"starting_after": nxt}}))


def repeated_search_cursor(request: Recorded):
    return Answer.json(page(["s1"], pages={"next": {"starting_after": "same"}}))


def repeated_scroll(request: Recorded):  # the same scroll_param and the same companies, for ever
    return Answer.json(page(["co1"], scroll_param="sp"))


def stuck_page_number(request: Recorded):  # ignores ?page=, always page 1 of 9
    return Answer.json(page(["a1"], pages={"type": "pages", "page": 1, "total_pages": 9}))


def endless(request: Recorded):  # advances for ever: only the page cap ends it
    n = int(request.query.get("starting_after") or 0)
    return Answer.json(page([f"e{n}"], pages={"next": {"starting_after": str(n + 1)}}))


# action, handler, body, pages emitted before the error, requests sent
ACTION_CASES = {
    "cursor-repeated": ("ListContacts", repeated_cursor, {}, 2, 2),
    "cursor-cycle": ("ListContacts", cycling_cursor, {}, 3, 3),
    "search-repeated": (
        "SearchContacts",
        repeated_search_cursor,
        {"query": {"field": "name", "operator": "=", "value": "x"}},
        2,
        2,
    ),
    "search-cycle": (
        "SearchContacts",
        cycling_cursor,
        {"query": {"field": "name", "operator": "=", "value": "x"}},
        3,
        3,
    ),
    "scroll-repeated": ("scrollOverAllCompanies", repeated_scroll, {}, 1, 2),
    "page-not-advancing": ("listArticles", stuck_page_number, {}, 1, 2),
}


@pytest.mark.parametrize("case", ACTION_CASES)
@pytest.mark.parametrize("behaviour", ["emitPage", "fetchAll"])
def test_list_actions_stop_on_a_loop_after_emitting_what_they_had(case: str, behaviour: str) -> None:
    action, handler, data, pages, requests = ACTION_CASES[case]
    with FakeIntercom(seed=False, answer=handler) as server:
        events = execute(action, {"data": data}, server.cfg(emitBehaviour=behaviour), component_dir=ROOT)
        sent = len(server.requests)
    kinds = [e["event"] for e in events]
    assert sent == requests
    assert kinds == (["data"] * pages if behaviour == "emitPage" else ["data"]) + ["error"]
    if behaviour == "fetchAll":
        assert events[0]["data"]["total"] == pages
    error = events[-1]["error"]
    assert error["code"] == "pagination_loop" and "loop" in error["message"]


def test_the_page_cap_ends_an_endless_list_with_a_clear_error() -> None:
    with FakeIntercom(seed=False, answer=endless) as server:
        events = execute(
            "ListContacts",
            {"data": {}},
            server.cfg(emitBehaviour="emitIndividually", maxPages="5"),
            component_dir=ROOT,
        )
        sent = len(server.requests)
    assert sent == 5
    assert [e["event"] for e in events] == ["data"] * 5 + ["error"]
    assert [e["data"]["id"] for e in events[:5]] == ["e0", "e1", "e2", "e3", "e4"]
    assert events[-1]["error"]["code"] == "page_limit" and "maxPages" in events[-1]["error"]["message"]


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "many", True])
def test_a_bad_page_cap_is_refused_before_any_request(value: Any) -> None:
    with FakeIntercom(seed=False, answer=endless) as server:
        events = execute("ListContacts", {"data": {}}, server.cfg(maxPages=value), component_dir=ROOT)
        assert server.requests == []
    assert [e["event"] for e in events] == ["error"] and "maxPages" in events[0]["error"]["message"]


# ------------------------------------------------------------------------------------------ triggers

TRIGGER_CASES = {
    "contacts-search-repeated": ("newOrUpdatedContacts", repeated_search_cursor, 1, 2),
    "contacts-search-cycle": ("newOrUpdatedContacts", cycling_cursor, 3, 3),
    "companies-scroll-repeated": ("newOrUpdatedCompanies", repeated_scroll, 1, 2),
    "newsfeeds-page-not-advancing": ("newOrUpdatedNewsfeeds", stuck_page_number, 1, 2),
}


@pytest.mark.parametrize("case", TRIGGER_CASES)
def test_polling_triggers_stop_on_a_loop_emit_what_they_had_and_save_their_position(case: str) -> None:
    trigger, handler, emitted, requests = TRIGGER_CASES[case]
    with FakeIntercom(seed=False, answer=handler) as server:
        cfg = server.cfg(startTime=str(BASE), lagSeconds="0")
        events, snapshot, _ = execute_full(trigger, {}, cfg, {}, component_dir=ROOT)
        sent = len(server.requests)
    kinds = [e["event"] for e in events]
    assert sent == requests
    assert kinds.count("data") == emitted and kinds.count("error") == 1 and kinds[-1] == "error"
    assert "snapshot" in kinds  # the position of what was emitted is saved before the error
    assert events[-1]["error"]["code"] == "pagination_loop"
    assert snapshot.get("updated_at") is not None


# -------------------------------------------------------------------------------------------- scrolls


class Scrolls:
    """A workspace of companies with Intercom's scroll rules: one scroll at a time; `refuse` makes the
    n-th request of the next scroll answer 400 (a parallel scroll or an expired scroll_param)."""

    def __init__(self, count: int, per_page: int = 3) -> None:
        self.companies = [
            {"type": "company", "id": f"co{i}", "updated_at": BASE + 10 + i} for i in range(count)
        ]
        self.per_page = per_page
        self.refuse_at: int | None = None
        self.open: dict[str, int] = {}
        self.calls = 0

    def __call__(self, request: Recorded):
        self.calls += 1
        if self.refuse_at is not None and self.calls == self.refuse_at:
            self.refuse_at = None
            self.open.clear()
            message = (
                "scroll parameter not found or expired"
                if request.query.get("scroll_param")
                else "scroll already exists for this workspace"
            )
            return Answer.json(
                {"type": "error.list", "errors": [{"code": "bad_request", "message": message}]}, 400
            )
        param = request.query.get("scroll_param")
        if param is None:
            param = f"sp{self.calls}"
            self.open[param] = 0
        start = self.open[param]
        chunk = self.companies[start : start + self.per_page]
        self.open[param] = start + len(chunk)
        return Answer.json({"type": "list", "data": chunk, "scroll_param": param})


@pytest.mark.parametrize(("refuse_at", "code"), [(1, "scroll_in_progress"), (3, "scroll_expired")])
def test_a_refused_scroll_is_a_clear_error(refuse_at: int, code: str) -> None:
    scrolls = Scrolls(10)
    scrolls.refuse_at = refuse_at
    with FakeIntercom(seed=False, answer=scrolls) as server:
        events = execute("scrollOverAllCompanies", {"data": {}}, server.cfg(), component_dir=ROOT)
    assert [e["event"] for e in events] == ["data"] * (refuse_at - 1) + ["error"]
    error = events[-1]["error"]
    assert error["code"] == code and error["status"] == 400
    assert ("one scroll per workspace" if code == "scroll_in_progress" else "expired") in error["message"]


def test_companies_trigger_restarts_a_refused_scroll_on_the_next_poll_and_loses_nothing() -> None:
    scrolls = Scrolls(10)
    with FakeIntercom(seed=False, answer=scrolls) as server:
        cfg = server.cfg(startTime=str(BASE), lagSeconds="0")
        scrolls.refuse_at = 3  # pages 1 and 2 arrive, then the scroll_param "expires"
        first, snapshot, _ = execute_full("newOrUpdatedCompanies", {}, cfg, {}, component_dir=ROOT)
        second, snapshot, _ = execute_full("newOrUpdatedCompanies", {}, cfg, snapshot, component_dir=ROOT)
        third, _, _ = execute_full("newOrUpdatedCompanies", {}, cfg, snapshot, component_dir=ROOT)
    ids = [[e["data"]["id"] for e in run if e["event"] == "data"] for run in (first, second, third)]
    assert ids[0] == [f"co{i}" for i in range(6)]
    assert [e["event"] for e in first][-1] == "error" and first[-1]["error"]["code"] == "scroll_expired"
    assert ids[1] == [f"co{i}" for i in range(6, 10)]  # the rest, nothing twice
    assert [e for e in second if e["event"] == "error"] == []
    assert ids[2] == []  # and nothing again once the scan completed
    assert sorted(ids[0] + ids[1]) == sorted(c["id"] for c in scrolls.companies)


def test_a_fetch_all_poll_emits_what_it_collected_then_the_error() -> None:
    with FakeIntercom(seed=False, answer=cycling_cursor) as server:
        cfg = server.cfg(startTime=str(BASE), lagSeconds="0", emitBehaviour="fetchAll")
        events, snapshot, _ = execute_full("newOrUpdatedContacts", {}, cfg, {}, component_dir=ROOT)
    assert [e["event"] for e in events] == ["data", "snapshot", "error"]
    assert [i["id"] for i in events[0]["data"]["data"]] == ["after-None", "after-A", "after-B"]
    assert snapshot["ids_at_last"] == ["after-A", "after-B", "after-None"]


def test_the_page_cap_ends_a_poll_after_saving_its_position() -> None:
    def endless_search(request: Recorded):
        n = int((request.body.get("pagination") or {}).get("starting_after") or 0)
        return Answer.json(page([f"e{n}"], pages={"next": {"starting_after": str(n + 1)}}))

    with FakeIntercom(seed=False, answer=endless_search) as server:
        cfg = server.cfg(startTime=str(BASE), lagSeconds="0", maxPages=3)
        events, snapshot, _ = execute_full("newOrUpdatedContacts", {}, cfg, {}, component_dir=ROOT)
        assert len(server.requests) == 3
    assert [e["event"] for e in events if e["event"] != "snapshot"] == ["data"] * 3 + ["error"]
    assert events[-1]["error"]["code"] == "page_limit" and snapshot["ids_at_last"] == ["e0", "e1", "e2"]
