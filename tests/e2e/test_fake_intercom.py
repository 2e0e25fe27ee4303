"""The fake Intercom behaves as the 2.8 description says where our code depends on it (search, scroll,
errors); other helpers' tests rely on these behaviours, so they are pinned here."""

import gzip
import re
import time

import pytest
import requests

from tools.fake_intercom import DAY, FakeIntercom

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def fake():
    with FakeIntercom(seed=False) as server:
        yield server


@pytest.fixture
def http(fake):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fake.token}"
    with session:
        yield session


def test_wrong_token_gets_intercoms_error_shape_and_a_request_id(fake):
    response = requests.get(fake.url + "/me", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error.list"
    assert body["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert fake.requests[-1].header("authorization") == "Bearer nope"


def test_unknown_route_is_a_404_error_list(http, fake):
    response = http.get(fake.url + "/no/such/thing", timeout=5)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def _search_all(http, url, body):
    """Follow search pagination to the end; returns every object in order."""
    seen, body = [], dict(body)
    while True:
        page = http.post(url + "/contacts/search", json=body, timeout=5).json()
        seen += page["data"]
        nxt = page["pages"].get("next")
        if not nxt:
            return seen
        body["pagination"] = {**body.get("pagination", {}), "starting_after": nxt["starting_after"]}


def test_contact_search_by_updated_at_matches_whole_days_sorted_and_paginated(http, fake):
    day = 1717027200  # 2024-05-30 00:00 UTC
    ids = [fake.add_contact(email=f"c{i}@x.io", updated_at=day + i * 3 * 3600)["id"] for i in range(8)]
    fake.add_contact(email="old@x.io", updated_at=day - 10)
    query = {
        "query": {"field": "updated_at", "operator": ">", "value": day - 1},
        "sort": {"field": "updated_at", "order": "ascending"},
        "pagination": {"per_page": 3},
    }
    # `>` on a date starts at the next day: day - 1 lies in the previous day, so all 8 of `day` match
    assert [c["id"] for c in _search_all(http, fake.url, query)] == ids
    query["query"]["value"] = day + 5  # same day: nothing on that day matches
    assert _search_all(http, fake.url, query) == []
    query["query"] = {"field": "updated_at", "operator": "=", "value": day + 7}
    query["sort"]["order"] = "descending"
    assert [c["id"] for c in _search_all(http, fake.url, query)] == ids[::-1]


def test_contact_search_rejects_operators_intercom_rejects_on_dates(http, fake):
    response = http.post(
        fake.url + "/contacts/search",
        timeout=5,
        json={"query": {"field": "updated_at", "operator": ">=", "value": 1}},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parameter_invalid"


def test_exact_semantics_compare_to_the_second(http):
    with FakeIntercom(seed=False, search_semantics="exact") as exact:
        a = exact.add_contact(email="a@x.io", updated_at=1000 * DAY + 10)
        exact.add_contact(email="b@x.io", updated_at=1000 * DAY + 5)
        query = {
            "query": {
                "operator": "OR",
                "value": [
                    {"field": "updated_at", "operator": ">", "value": 1000 * DAY + 5},
                    {"field": "email", "operator": "=", "value": "nobody"},
                ],
            }
        }
        http.headers["Authorization"] = f"Bearer {exact.token}"
        page = http.post(exact.url + "/contacts/search", json=query, timeout=5).json()
        assert [c["id"] for c in page["data"]] == [a["id"]] and page["total_count"] == 1


def test_conversation_search_bounds_are_inclusive(http, fake):
    first = fake.add_conversation(updated_at=500)
    fake.add_conversation(updated_at=499)
    page = http.post(
        fake.url + "/conversations/search",
        timeout=5,
        json={"query": {"field": "updated_at", "operator": ">", "value": 500}},
    ).json()
    assert page["type"] == "conversation.list"
    assert [c["id"] for c in page["conversations"]] == [first["id"]]


def test_companies_scroll_ends_with_an_empty_page_then_expires(http, fake):
    made = [fake.add_company(company_id=f"co{i}")["company_id"] for i in range(5)]
    fake.scroll_page_size = 2
    got, param, sizes = [], None, []
    while True:
        page = http.get(
            fake.url + "/companies/scroll", params={"scroll_param": param} if param else None, timeout=5
        ).json()
        sizes.append(len(page["data"]))
        got += [c["company_id"] for c in page["data"]]
        param = page["scroll_param"]
        if not page["data"]:
            break
    assert got == made and sizes == [2, 2, 1, 0]
    expired = http.get(fake.url + "/companies/scroll", params={"scroll_param": param}, timeout=5)
    assert expired.status_code == 404


def test_companies_list_pages_by_number(http, fake):
    for i in range(3):
        fake.add_company(company_id=f"co{i}", last_request_at=i)
    first = http.post(fake.url + "/companies/list", params={"per_page": 2}, timeout=5).json()
    assert [c["company_id"] for c in first["data"]] == ["co2", "co1"]
    assert first["pages"]["total_pages"] == 2 and first["pages"]["next"]
    second = http.post(fake.url + "/companies/list", params={"per_page": 2, "page": 2}, timeout=5).json()
    assert [c["company_id"] for c in second["data"]] == ["co0"] and second["pages"]["next"] is None


def test_fail_next_injects_a_rate_limit_once_on_the_matching_path(http, fake):
    fake.fail_next(429, path="/contacts")
    assert http.get(fake.url + "/me", timeout=5).status_code == 200  # /me is not matched
    limited = http.get(fake.url + "/contacts", timeout=5)
    assert limited.status_code == 429 and int(limited.headers["X-RateLimit-Reset"]) > 0
    assert limited.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert http.get(fake.url + "/contacts", timeout=5).status_code == 200


def test_export_download_is_gzip_bytes(http, fake):
    fake.add_contact(email="a@x.io")
    job = http.post(
        fake.url + "/export/content/data", json={"created_at_after": 1, "created_at_before": 2}, timeout=5
    ).json()
    status = http.get(fake.url + f"/export/content/data/{job['job_identifier']}", timeout=5).json()
    assert status["status"] == "completed"
    download = http.get(status["download_url"], headers={"Accept": "application/octet-stream"}, timeout=5)
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert gzip.decompress(download.content).startswith(b"message_id,")


def test_reset_forgets_objects_faults_and_requests(http, fake):
    fake.add_contact(email="a@x.io")
    fake.fail_next(500)
    fake.per_page = 1
    fake.reset()
    page = http.get(fake.url + "/contacts", timeout=5).json()  # no 500: the fault is gone
    assert page["data"] == [] and page["pages"]["per_page"] == 50
    assert len(fake.requests) == 1


def test_an_unknown_intercom_version_is_rejected(http, fake):
    assert http.get(fake.url + "/me", headers={"Intercom-Version": "2.8"}, timeout=5).status_code == 200
    response = http.get(fake.url + "/me", headers={"Intercom-Version": "latest"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "intercom_version_invalid"


def test_data_events_list_and_summary_for_one_user(http, fake):
    ada = fake.add_contact(email="ada@example.com", external_id="42")
    fake.add_contact(email="bob@example.com", external_id="43")
    for name, user, at in (
        ("ordered", {"user_id": "42"}, 100),
        ("ordered", {"email": ada["email"]}, 200),
        ("invited", {"id": ada["id"]}, 300),
        ("ordered", {"user_id": "43"}, 400),
    ):
        assert (
            http.post(
                fake.url + "/events", json={"event_name": name, "created_at": at, **user}, timeout=5
            ).status_code
            == 202
        )
    listed = http.get(fake.url + "/events", params={"type": "user", "user_id": "42"}, timeout=5).json()
    assert listed["type"] == "event.list" and "pages" in listed
    assert [(e["event_name"], e["created_at"]) for e in listed["events"]] == [
        ("invited", 300),
        ("ordered", 200),
        ("ordered", 100),
    ]  # newest first, however the user was named
    assert {(e["user_id"], e["intercom_user_id"], e["email"]) for e in listed["events"]} == {
        ("42", ada["id"], "ada@example.com")
    }
    summary = http.get(
        fake.url + "/events",
        params={"type": "user", "email": "ada@example.com", "summary": "true"},
        timeout=5,
    ).json()
    assert summary["type"] == "event.summary" and summary["user_id"] == "42"
    assert {e["name"]: e["count"] for e in summary["events"]} == {"ordered": 2, "invited": 1}


def test_data_events_need_type_user_and_one_known_user(http, fake):
    fake.add_contact(email="ada@example.com", external_id="42")
    for params, status in (
        ({"user_id": "42"}, 400),
        ({"type": "user"}, 400),
        ({"type": "lead", "user_id": "42"}, 400),
        ({"type": "user", "user_id": "nobody"}, 404),
    ):
        response = http.get(fake.url + "/events", params=params, timeout=5)
        assert response.status_code == status, (params, response.text)
        assert response.json()["type"] == "error.list"


def test_companies_attached_to_a_contact(http, fake):
    contact = fake.add_contact(email="ada@example.com")["id"]
    acme = fake.add_company(company_id="acme", name="Acme")["id"]
    fake.add_company(company_id="other", name="Other")
    empty = http.get(f"{fake.url}/contacts/{contact}/companies", timeout=5).json()
    assert (empty["type"], empty["data"], empty["total_count"]) == ("list", [], 0)
    attached = http.post(f"{fake.url}/contacts/{contact}/companies", json={"id": acme}, timeout=5).json()
    assert attached["id"] == acme and attached["user_count"] == 1
    listed = http.get(f"{fake.url}/contacts/{contact}/companies", timeout=5).json()
    assert [c["id"] for c in listed["data"]] == [acme] and listed["total_count"] == 1
    assert listed["pages"]["next"] is None and listed["pages"]["total_pages"] == 1
    assert http.get(f"{fake.url}/contacts/nobody/companies", timeout=5).status_code == 404
    assert (
        http.post(f"{fake.url}/contacts/{contact}/companies", json={"id": "nope"}, timeout=5).status_code
        == 404
    )


def test_delay_is_the_time_from_request_to_answer_with_the_fakes_own_work_inside_it(http, fake):
    """A latency benchmark's ideal (prefetch / latency) must be reachable: the fake's handling time is
    part of `delay`, not added to it."""
    slow = 0.4

    def slow_route(rec):
        time.sleep(slow)
        return {"type": "slow"}

    fake.routes.insert(0, ("GET", re.compile("^/slow$"), slow_route))
    fake.delay = 0.5
    started = time.monotonic()
    answer = http.get(f"{fake.url}/slow")
    elapsed = time.monotonic() - started
    assert answer.json() == {"type": "slow"}
    assert fake.delay <= elapsed < fake.delay + slow - 0.05, elapsed
