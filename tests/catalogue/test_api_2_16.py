"""What is particular to the 2.16 actions: the version header they send, and the pagination styles only
2.16 lists have (a top-level next_cursor, page numbers in the body or at the top level), each ending on a
repeat with what it had, then one error."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from elasticio_sailor import execute

from lib.intercom.client import IntercomClient
from tests.catalogue import support

TOKEN = "tok_2_16_1234567890"
API = "https://api.intercom.io"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _fresh_clients():
    IntercomClient.clear_cache()
    yield
    IntercomClient.clear_cache()


def run(action: str, data: dict[str, Any], answers: list[Any], method: str = "GET", **cfg: Any):
    """Execute with `answers` served in order for any URL; (events, requests)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for answer in answers:
            mock.add(method, re.compile(re.escape(API) + r"/.*"), json=answer)
        events = execute(action, {"data": data}, {"accessToken": TOKEN, **cfg}, component_dir=support.ROOT)
        return events, [call.request for call in mock.calls]


@pytest.mark.parametrize(
    ("action", "data", "credentials", "expected"),
    [
        ("getTicket", {"ticket_id": "1"}, "2.9", "2.16"),  # a 2.16 action: its own version
        (
            "getTicket",
            {"ticket_id": "1", "Intercom-Version": "2.15"},
            "2.9",
            "2.15",
        ),  # unless the message says
        ("collectFinVoiceCallById", {"id": 5}, "2.9", "2.16"),  # no header parameter: still 2.16
        ("ShowContact", {"id": "1"}, "2.9", "2.9"),  # a 2.8 action: the credentials' version
        ("ShowContact", {"id": "1"}, None, "2.8"),
    ],
)
def test_version_header(action: str, data: dict, credentials: str | None, expected: str) -> None:
    cfg = {"intercomVersion": credentials} if credentials else {}
    events, calls = run(action, data, [{"type": "thing", "id": "1"}], **cfg)
    assert [e["event"] for e in events] == ["data"]
    assert [c.headers["Intercom-Version"] for c in calls] == [expected]


def merge_page(ids: list[str], cursor: str | None, more: bool) -> dict:
    return {
        "type": "list",
        "data": [{"type": "merge_history", "id": i} for i in ids],
        "next_cursor": cursor,
        "has_more": more,
    }


def test_merge_history_follows_next_cursor_until_has_more_is_false() -> None:
    answers = [
        merge_page(["a", "b"], "c1", True),
        merge_page(["c"], "c2", True),
        merge_page(["d"], None, False),
    ]
    events, calls = run(
        "ListContactMergeHistory", {"id": "7", "per_page": 2}, answers, emitBehaviour="emitIndividually"
    )
    assert [e["data"]["id"] for e in events] == ["a", "b", "c", "d"]
    queries = [parse_qs(urlsplit(c.url).query) for c in calls]
    assert [q.get("cursor") for q in queries] == [None, ["c1"], ["c2"]]
    assert all(q["per_page"] == ["2"] for q in queries)


def test_merge_history_stops_on_a_repeated_cursor_after_emitting_what_it_read() -> None:
    answers = [merge_page(["a"], "same", True)] * 5
    events, calls = run("ListContactMergeHistory", {"id": "7"}, answers, emitBehaviour="fetchAll")
    assert [e["event"] for e in events] == ["data", "error"]
    assert events[0]["data"]["data"] == [{"type": "merge_history", "id": "a"}] * 2
    assert events[1]["error"]["code"] == "pagination_loop" and len(calls) == 2


def log_page(ids: list[str], page: int, total: int) -> dict:
    return {
        "type": "activity_log.list",
        "activity_logs": [{"id": i} for i in ids],
        "pages": {"type": "pages", "page": page, "per_page": 1, "total_pages": total},
    }


def test_activity_log_search_sends_the_next_page_number_in_the_body() -> None:
    body = {"created_at_after": 1677253093, "per_page": 1}
    answers = [log_page(["a"], 1, 3), log_page(["b"], 2, 3), log_page(["c"], 3, 3)]
    events, calls = run(
        "searchActivityLogs", {"requestBody": body}, answers, method="POST", emitBehaviour="emitIndividually"
    )
    assert [e["data"]["id"] for e in events] == ["a", "b", "c"]
    assert [json.loads(c.body).get("page") for c in calls] == [None, 2, 3]
    assert all(json.loads(c.body)["created_at_after"] == 1677253093 for c in calls)
    for call in calls:
        support.validate_request(call, "2.16")


def test_activity_log_search_stops_when_the_page_number_does_not_advance() -> None:
    answers = [log_page(["a"], 1, 3)] * 4
    events, calls = run(
        "searchActivityLogs", {"requestBody": {"created_at_after": 1}}, answers, method="POST"
    )
    assert [e["event"] for e in events] == ["data", "error"]
    assert events[1]["error"]["code"] == "pagination_loop" and len(calls) == 2


def test_audiences_page_by_the_top_level_page_numbers() -> None:
    answers = [
        {"type": "list", "data": [{"id": str(n)}], "page": n, "per_page": 1, "total_pages": 2} for n in (1, 2)
    ]
    events, calls = run("listAudiences", {"per_page": 1}, answers, emitBehaviour="emitIndividually")
    assert [e["data"]["id"] for e in events] == ["1", "2"]
    assert [parse_qs(urlsplit(c.url).query).get("page") for c in calls] == [None, ["2"]]


def test_article_search_emits_the_articles_nested_under_data() -> None:
    answer = {
        "type": "list",
        "total_count": 2,
        "data": {"articles": [{"id": "1"}, {"id": "2"}], "highlights": []},
        "pages": {"type": "pages", "page": 1, "per_page": 10, "total_pages": 1},
    }
    events, _ = run("searchArticles", {"phrase": "billing"}, [answer], emitBehaviour="fetchAll")
    everything = {"type": "list", "articles": [{"id": "1"}, {"id": "2"}], "total": 2}
    assert [e["data"] for e in events] == [everything]
    events, _ = run("searchArticles", {"phrase": "billing"}, [answer], emitBehaviour="emitIndividually")
    assert [e["data"]["id"] for e in events] == ["1", "2"]


def test_a_call_recording_follows_the_redirect_without_the_token() -> None:
    with responses.RequestsMock() as mock:
        mock.add(
            "GET",
            f"{API}/calls/c1/recording",
            status=302,
            headers={"Location": "https://recordings.example.com/c1.mp3?sig=x"},
        )
        mock.add("GET", "https://recordings.example.com/c1.mp3", body=b"ID3audio", content_type="audio/mpeg")
        events = execute(
            "showCallRecording",
            {"data": {"call_id": "c1"}},
            {"accessToken": TOKEN},
            component_dir=support.ROOT,
        )
        followed = mock.calls[1].request
    assert events[0]["data"]["contentType"] == "audio/mpeg" and events[0]["data"]["size"] == 8
    assert "Authorization" not in followed.headers
