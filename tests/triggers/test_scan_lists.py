"""Page-numbered lists the fake Intercom does not serve (articles, sections, news items), with `responses`."""

from __future__ import annotations

import pytest
import responses

from lib.triggers import articles, news_items, sections
from tests.in_process import ids, run

from .conftest import BASE

pytestmark = pytest.mark.timeout(30)
API = "https://api.intercom.io"
CFG = {"accessToken": "tok-1234567890", "maxRetries": 0, "startTime": BASE}


def page(items: list[dict], number: int, total: int) -> dict:
    return {
        "type": "list",
        "data": items,
        "total_count": 99,
        "pages": {"type": "pages", "page": number, "per_page": len(items), "total_pages": total},
    }


def article(oid: str, ts: int, **extra) -> dict:
    return {"id": oid, "type": "article", "state": "published", "parent_id": 1, "updated_at": ts, **extra}


@responses.activate
def test_descending_list_stops_at_the_first_page_older_than_the_position():
    pages = [
        [article("9", BASE + 90), article("8", BASE + 80)],
        [article("7", BASE + 70), article("1", BASE - 10)],  # reaches older objects: the last page read
        [article("0", BASE - 20), article("-1", BASE - 30)],
    ]
    for number, items in enumerate(pages, 1):
        responses.get(
            f"{API}/articles",
            json=page(items, number, 3),
            match=[
                responses.matchers.query_param_matcher(
                    {"per_page": "50", **({"page": str(number)} if number > 1 else {})}
                )
            ],
        )
    result = run(articles, CFG)
    assert ids(result) == ["9", "8", "7"]
    assert len(responses.calls) == 2
    assert result.snapshot["updated_at"] > BASE + 90  # a complete scan: the position moved to its start
    assert run(articles, CFG, result.snapshot).data == []


@responses.activate
def test_descending_list_filters_state_and_collection_client_side():
    items = [
        article("3", BASE + 3, state="draft"),
        article("2", BASE + 2, parent_id=7),
        article("1", BASE + 1),
    ]
    responses.get(f"{API}/articles", json=page(items, 1, 1))
    assert ids(run(articles, {**CFG, "state": "published"})) == ["2", "1"]
    assert ids(run(articles, {**CFG, "parentId": 7})) == ["2"]


@responses.activate
def test_sections_and_news_items_read_every_page():
    responses.get(f"{API}/help_center/sections", json=page([{"id": "s1", "updated_at": BASE + 5}], 1, 1))
    assert ids(run(sections, CFG)) == ["s1"]
    news = [
        [{"id": "n1", "state": "live", "updated_at": BASE - 5}],  # unordered: older first...
        [{"id": "n2", "state": "live", "updated_at": BASE + 5}],
    ]  # ...newer on a later page
    for number, items in enumerate(news, 1):
        responses.get(
            f"{API}/news/news_items",
            json=page(items, number, 2),
            match=[
                responses.matchers.query_param_matcher(
                    {"per_page": "50", **({"page": "2"} if number == 2 else {})}
                )
            ],
        )
    assert ids(run(news_items, CFG)) == ["n2"]
