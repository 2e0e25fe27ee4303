"""Every pagination style through the three emit behaviours, plus loop guards and streaming."""

from __future__ import annotations

import json
from typing import Any

import pytest
from responses import matchers

from lib.intercom.client import IntercomClient
from lib.intercom.pagination import PaginationError
from lib.operation import Operation
from tests.lib.conftest import SCHEMAS, US

pytestmark = pytest.mark.timeout(30)


def items(*ids: str) -> list[dict[str, Any]]:
    return [{"type": "thing", "id": i} for i in ids]


def q(**params: str) -> list:
    return [matchers.query_param_matcher(params)]


def mock_cursor(rsps) -> tuple[Operation, dict]:
    rsps.get(
        f"{US}/conversations",
        match=q(per_page="2"),
        json={
            "type": "conversation.list",
            "data": items("1", "2"),
            "total_count": 3,
            "pages": {
                "type": "pages",
                "page": 1,
                "per_page": 2,
                "total_pages": 2,
                "next": {"page": 2, "starting_after": "WzE2O=="},
            },
        },
    )
    rsps.get(
        f"{US}/conversations",
        match=q(per_page="2", starting_after="WzE2O=="),
        json={
            "type": "conversation.list",
            "data": items("3"),
            "total_count": 3,
            "pages": {"type": "pages", "page": 2, "per_page": 2, "total_pages": 2},
        },
    )
    operation = Operation(
        "TestList",
        "GET",
        "/conversations",
        query_params=("per_page", "starting_after"),
        pagination="cursor",
        items_key="data",
        schema_dir=SCHEMAS,
    )
    return operation, {"per_page": 2}


def mock_search(rsps) -> tuple[Operation, dict]:
    query = {"field": "updated_at", "operator": ">", "value": 1}
    rsps.post(
        f"{US}/contacts/search",
        match=[matchers.json_params_matcher({"query": query, "pagination": {"per_page": 2}})],
        json={
            "type": "list",
            "data": items("1", "2"),
            "total_count": 3,
            "pages": {
                "type": "pages",
                "page": 1,
                "per_page": 2,
                "total_pages": 2,
                "next": {"page": 2, "starting_after": "c2"},
            },
        },
    )
    rsps.post(
        f"{US}/contacts/search",
        match=[
            matchers.json_params_matcher(
                {"query": query, "pagination": {"per_page": 2, "starting_after": "c2"}}
            )
        ],
        json={
            "type": "list",
            "data": items("3"),
            "total_count": 3,
            "pages": {"type": "pages", "page": 2, "per_page": 2, "total_pages": 2, "next": None},
        },
    )
    operation = Operation(
        "TestSearch",
        "POST",
        "/contacts/search",
        has_body=True,
        pagination="search",
        items_key="data",
        idempotent=True,
        schema_dir=SCHEMAS,
    )
    return operation, {"requestBody": {"query": query, "pagination": {"per_page": 2}}}


def mock_scroll(rsps) -> tuple[Operation, dict]:
    rsps.get(
        f"{US}/companies/scroll",
        match=q(),
        json={"type": "list", "data": items("1", "2"), "scroll_param": "sp-1", "pages": None},
    )
    rsps.get(
        f"{US}/companies/scroll",
        match=q(scroll_param="sp-1"),
        json={"type": "list", "data": items("3"), "scroll_param": "sp-1"},
    )
    rsps.get(
        f"{US}/companies/scroll",
        match=q(scroll_param="sp-1"),
        json={"type": "list", "data": [], "scroll_param": "sp-1"},
    )
    operation = Operation(
        "TestList",
        "GET",
        "/companies/scroll",
        query_params=("scroll_param",),
        pagination="scroll",
        items_key="data",
        schema_dir=SCHEMAS,
    )
    return operation, {}


def mock_page(rsps) -> tuple[Operation, dict]:
    rsps.get(
        f"{US}/articles",
        match=q(per_page="2"),
        json={
            "type": "list",
            "data": items("1", "2"),
            "total_count": 3,
            "pages": {"type": "pages", "page": 1, "per_page": 2, "total_pages": 2, "next": None},
        },
    )
    rsps.get(
        f"{US}/articles",
        match=q(per_page="2", page="2"),
        json={
            "type": "list",
            "data": items("3"),
            "total_count": 3,
            "pages": {"type": "pages", "page": 2, "per_page": 2, "total_pages": 2},
        },
    )
    operation = Operation(
        "TestList",
        "GET",
        "/articles",
        query_params=("per_page", "page"),
        pagination="page",
        items_key="data",
        schema_dir=SCHEMAS,
    )
    return operation, {"per_page": 2}


def mock_page_url(rsps) -> tuple[Operation, dict]:
    rsps.get(
        f"{US}/admins/activity_logs",
        match=q(),
        json={
            "type": "activity_log.list",
            "activity_logs": items("1", "2"),
            "pages": {
                "type": "pages",
                "page": 1,
                "per_page": 2,
                "total_pages": 2,
                "next": f"{US}/admins/activity_logs?page=2&per_page=2",
            },
        },
    )
    rsps.get(
        f"{US}/admins/activity_logs",
        match=q(page="2", per_page="2"),
        json={
            "type": "activity_log.list",
            "activity_logs": items("3"),
            "pages": {"type": "pages", "page": 2, "per_page": 2, "total_pages": 2, "next": None},
        },
    )
    operation = Operation(
        "TestList",
        "GET",
        "/admins/activity_logs",
        pagination="page",
        items_key="activity_logs",
        schema_dir=SCHEMAS,
    )
    return operation, {}


def mock_single(rsps) -> tuple[Operation, dict]:
    """A list endpoint without pagination (e.g. listAdmins): behaviours apply to its one page."""
    rsps.get(f"{US}/admins", json={"type": "admin.list", "admins": items("1", "2", "3")})
    operation = Operation("TestList", "GET", "/admins", items_key="admins", schema_dir=SCHEMAS)
    return operation, {}


STYLES = {
    "cursor": mock_cursor,
    "search": mock_search,
    "scroll": mock_scroll,
    "page": mock_page,
    "page_url": mock_page_url,
    "none": mock_single,
}


def run(operation: Operation, data: dict, cfg: dict) -> list[dict]:
    result = operation.process(
        None, {"data": data, "metadata": {"applicationUid": "a", "oihUid": "o"}}, cfg, {}
    )
    return list(result)


@pytest.mark.parametrize("behaviour", ["emitPage", None, ""])  # emitPage is the default
@pytest.mark.parametrize("style", STYLES)
def test_emit_page(rsps, cfg, style, behaviour):
    operation, data = STYLES[style](rsps)
    messages = run(operation, data, {**cfg, "emitBehaviour": behaviour})
    key = operation.items_key
    expected = [["1", "2", "3"]] if style == "none" else [["1", "2"], ["3"]]
    assert [[i["id"] for i in m["data"][key]] for m in messages] == expected
    assert all(m["metadata"] == {"applicationUid": "a", "oihUid": "o"} for m in messages)


@pytest.mark.parametrize("style", STYLES)
def test_emit_individually(rsps, cfg, style):
    operation, data = STYLES[style](rsps)
    messages = run(operation, data, {**cfg, "emitBehaviour": "emitIndividually"})
    assert [m["data"] for m in messages] == items("1", "2", "3")
    assert [m["metadata"] for m in messages] == [
        {"applicationUid": "a", "oihUid": "o", "recordUid": i} for i in ("1", "2", "3")
    ]


@pytest.mark.parametrize("style", STYLES)
def test_fetch_all(rsps, cfg, style):
    operation, data = STYLES[style](rsps)
    [message] = run(operation, data, {**cfg, "emitBehaviour": "fetchAll"})
    key = operation.items_key
    assert message["data"] == {"type": "list", key: items("1", "2", "3"), "total": 3}
    assert message["metadata"] == {"applicationUid": "a", "oihUid": "o"}


def test_search_does_not_mutate_the_incoming_body(rsps, cfg):
    operation, data = mock_search(rsps)
    before = json.dumps(data)
    run(operation, data, {**cfg, "emitBehaviour": "fetchAll"})
    assert json.dumps(data) == before


def test_emit_individually_streams_page_by_page(rsps, cfg):
    """The next page is fetched only when the previous page's objects were emitted: memory stays flat."""
    operation, data = mock_cursor(rsps)
    stream = operation.process(None, {"data": data}, {**cfg, "emitBehaviour": "emitIndividually"}, {})
    assert len(rsps.calls) == 0
    next(stream)
    next(stream)
    assert len(rsps.calls) == 1
    next(stream)
    assert len(rsps.calls) == 2


def pages_then_error(iterator) -> tuple[list, Exception | None]:
    pages = []
    try:
        for page in iterator:
            pages.append(page)
    except PaginationError as exc:
        return pages, exc
    return pages, None


def test_same_cursor_twice_stops_with_an_error_after_the_pages(rsps, cfg):
    looping = {"data": items("1"), "pages": {"next": {"starting_after": "same"}}}
    rsps.get(f"{US}/contacts", json=looping)
    pages, error = pages_then_error(IntercomClient.from_cfg(cfg).paginate("GET", "/contacts", style="cursor"))
    assert len(pages) == 2 and len(rsps.calls) == 2
    assert error.code == "pagination_loop" and "already requested" in str(error)


def test_same_next_url_twice_stops(rsps, cfg):
    rsps.get(f"{US}/x", json={"data": [1], "pages": {"next": f"{US}/x?page=2"}})
    pages, error = pages_then_error(IntercomClient.from_cfg(cfg).paginate("GET", "/x", style="page"))
    assert len(pages) == 2 and error.code == "pagination_loop"


def test_page_numbers_must_advance(rsps, cfg):
    rsps.get(f"{US}/x", json={"data": [1], "pages": {"page": 1, "total_pages": 5}})
    pages, error = pages_then_error(IntercomClient.from_cfg(cfg).paginate("GET", "/x", style="page"))
    assert len(pages) == 1 and len(rsps.calls) == 2  # the repeated page 1 is not emitted twice
    assert "page 1 (of 5) again" in str(error)


def test_scroll_with_no_companies_yields_the_empty_first_page(rsps, cfg):
    rsps.get(f"{US}/companies/scroll", json={"type": "list", "data": [], "scroll_param": "s"})
    pages = list(IntercomClient.from_cfg(cfg).paginate("GET", "/companies/scroll", style="scroll"))
    assert pages == [{"type": "list", "data": [], "scroll_param": "s"}]


def test_cursor_without_next_is_one_page(rsps, cfg):
    rsps.get(f"{US}/conversations", json={"data": items("1"), "pages": {"next": None}})
    assert len(list(IntercomClient.from_cfg(cfg).paginate("GET", "/conversations", style="cursor"))) == 1


def test_search_pages_are_retried_on_5xx(rsps, cfg, sleeps):
    """Searching is a read: a 502 on page two is retried, not fatal, even though it is a POST."""
    first = {"data": items("1"), "pages": {"next": {"starting_after": "c1"}}}
    second = {"data": items("2"), "pages": {"next": None}}
    page2 = [matchers.json_params_matcher({"query": {}, "pagination": {"starting_after": "c1"}})]
    rsps.post(f"{US}/contacts/search", match=[matchers.json_params_matcher({"query": {}})], json=first)
    rsps.post(f"{US}/contacts/search", match=page2, status=502)
    rsps.post(f"{US}/contacts/search", match=page2, json=second)
    pages = list(
        IntercomClient.from_cfg(cfg).paginate("POST", "/contacts/search", style="search", json={"query": {}})
    )
    assert pages == [first, second] and len(rsps.calls) == 3 and len(sleeps) == 1
