"""End to end: `python -m elasticio_sailor exec ACTION` as a subprocess, over real HTTP to the fake Intercom.

Why: unit tests mock the HTTP layer; these run the component exactly as a user or the platform does
(component.json -> module -> validation -> requests -> loopback server -> emitted JSON lines) and check
what Intercom would have received as well as what was emitted.
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.fake_intercom import FakeIntercom

ROOT = Path(__file__).resolve().parents[2]
DAY = 1717027200  # 2024-05-30 00:00 UTC
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fake():
    with FakeIntercom(seed=False) as server:
        yield server


def cfg_for(fake: FakeIntercom, **fields) -> dict:
    return {"accessToken": fake.token, "server": "custom", "otherServer": fake.url, **fields}


def run_exec(tmp_path: Path, action: str, cfg: dict, msg: dict) -> tuple[int, list[dict], str, str]:
    """Run the harness once; returns (exit code, parsed event lines, stdout, stderr)."""
    cfg_file, msg_file = tmp_path / "cfg.json", tmp_path / "msg.json"
    cfg_file.write_text(json.dumps(cfg))
    msg_file.write_text(json.dumps(msg))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "elasticio_sailor",
            "exec",
            action,
            "--cfg",
            str(cfg_file),
            "--msg",
            str(msg_file),
            "--component",
            str(ROOT),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.returncode, events, result.stdout, result.stderr


def data_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "data"]


# ---- one action per pagination style, in every emit behaviour --------------------------------------
def seed_contacts(fake: FakeIntercom) -> list[str]:
    fake.per_page = 2
    fake.add_contact(email="yesterday@x.io", updated_at=DAY - 60)  # filtered out by the search below
    return [fake.add_contact(email=f"c{i}@x.io", updated_at=DAY + 60 * (5 - i))["id"] for i in range(5)]


def seed_companies(fake: FakeIntercom) -> list[str]:
    fake.scroll_page_size = 2
    return [
        fake.add_company(company_id=f"co{i}", name=f"Co {i}", last_request_at=100 - i)["id"] for i in range(5)
    ]


SEARCH_BODY = {
    "query": {
        "operator": "AND",
        "value": [
            {"field": "updated_at", "operator": ">", "value": DAY - 1},
            {"field": "email", "operator": "~", "value": "@x.io"},
        ],
    },
    "sort": {"field": "updated_at", "order": "ascending"},
    "pagination": {"per_page": 2},
}

PAGINATION = {
    # action: (seeding, message, items key, requests, emitted pages, order of ids (None: seeding order))
    "ListContacts": (lambda fake: seed_contacts(fake) and list(fake.db["contacts"]), {}, "data", 3, 3, None),
    "SearchContacts": (seed_contacts, {"requestBody": SEARCH_BODY}, "data", 3, 3, "reversed"),
    # 2, 2, 1 companies, then the empty page that ends a scroll (not worth a message)
    "scrollOverAllCompanies": (seed_companies, {}, "data", 4, 3, None),
    "listAllCompanies": (seed_companies, {"per_page": 2}, "data", 3, 3, None),  # by last_request_at desc
}


@pytest.mark.parametrize("behaviour", ["emitPage", "emitIndividually", "fetchAll"])
@pytest.mark.parametrize("action", list(PAGINATION))
def test_pagination_style_in_each_emit_behaviour(fake, tmp_path, action, behaviour):
    seed, msg, key, requests, pages, order = PAGINATION[action]
    ids = seed(fake)
    expected = ids[::-1] if order == "reversed" else ids
    code, events, _, stderr = run_exec(
        tmp_path,
        action,
        cfg_for(fake, emitBehaviour=behaviour),
        {"data": msg, "metadata": {"oihUid": "oih-1"}},
    )
    assert code == 0, stderr
    assert [e["event"] for e in events] == ["data"] * len(events)
    assert len(fake.requests) == requests  # followed the pagination to the end, each page once
    if behaviour == "emitPage":
        assert len(events) == pages
        assert [item["id"] for e in events for item in e["data"][key]] == expected
    elif behaviour == "emitIndividually":
        assert [e["data"]["id"] for e in events] == expected
        assert [e["metadata"]["recordUid"] for e in events] == expected
    else:
        assert len(events) == 1
        assert [item["id"] for item in events[0]["data"][key]] == expected
    assert all(e["metadata"].get("oihUid") == "oih-1" for e in events)


def test_search_sends_the_query_and_the_cursor_in_the_body(fake, tmp_path):
    seed_contacts(fake)
    code, _, _, stderr = run_exec(
        tmp_path, "SearchContacts", cfg_for(fake), {"data": {"requestBody": SEARCH_BODY}}
    )
    assert code == 0, stderr
    first, second = fake.requests[:2]
    assert first.method == "POST" and first.body == SEARCH_BODY
    assert second.body["query"] == SEARCH_BODY["query"]
    assert second.body["pagination"]["starting_after"]


# ---- one action per HTTP method ---------------------------------------------------------------------
def test_get_show_contact(fake, tmp_path):
    contact = fake.add_contact(email="ada@x.io", name="Ada")
    code, events, _, stderr = run_exec(
        tmp_path,
        "ShowContact",
        cfg_for(fake),
        {"data": {"id": contact["id"]}, "metadata": {"applicationUid": "a1"}},
    )
    assert code == 0, stderr
    [event] = events
    assert event["data"]["email"] == "ada@x.io"
    assert event["metadata"] == {"applicationUid": "a1", "recordUid": contact["id"]}
    [request] = fake.requests
    assert (request.method, request.path, request.body) == ("GET", f"/contacts/{contact['id']}", None)
    assert request.header("Authorization") == f"Bearer {fake.token}"
    assert request.header("Intercom-Version") == "2.8"
    assert request.header("Accept") == "application/json"


def test_post_create_contact(fake, tmp_path):
    body = {"email": "grace@x.io", "name": "Grace", "custom_attributes": {"plan": "pro"}}
    code, events, _, stderr = run_exec(
        tmp_path, "CreateContact", cfg_for(fake, intercomVersion="2.7"), {"data": {"requestBody": body}}
    )
    assert code == 0, stderr
    [request] = fake.requests
    assert (request.method, request.path, request.body) == ("POST", "/contacts", body)
    assert request.header("Content-Type").startswith("application/json")
    assert request.header("Intercom-Version") == "2.7"
    [event] = events
    assert event["data"]["id"] in fake.db["contacts"]
    assert fake.db["contacts"][event["data"]["id"]]["custom_attributes"] == {"plan": "pro"}


def test_put_update_contact(fake, tmp_path):
    contact = fake.add_contact(email="old@x.io", updated_at=1)
    fake.now = 1717000000
    code, events, _, stderr = run_exec(
        tmp_path,
        "UpdateContact",
        cfg_for(fake),
        {"data": {"id": contact["id"], "requestBody": {"name": "New name"}}},
    )
    assert code == 0, stderr
    [request] = fake.requests
    assert (request.method, request.body) == ("PUT", {"name": "New name"})
    assert events[0]["data"]["name"] == "New name" and events[0]["data"]["updated_at"] == 1717000000


def test_delete_contact(fake, tmp_path):
    contact = fake.add_contact(email="gone@x.io")
    code, events, _, stderr = run_exec(
        tmp_path, "DeleteContact", cfg_for(fake), {"data": {"id": contact["id"]}}
    )
    assert code == 0, stderr
    assert fake.requests[0].method == "DELETE"
    assert events[0]["data"] == {"id": contact["id"], "object": "contact", "deleted": True}
    assert contact["id"] not in fake.db["contacts"]


def test_path_parameters_are_url_encoded(fake, tmp_path):
    code, _, _, _ = run_exec(tmp_path, "ShowContact", cfg_for(fake), {"data": {"id": "a/b c"}})
    assert code == 1  # no such contact
    [request] = fake.requests
    assert request.path == "/contacts/a%2Fb%20c"


# ---- errors, retries, credentials -------------------------------------------------------------------
def test_wrong_token_is_an_error_event_without_the_token(fake, tmp_path):
    wrong = "wrong-token-Zq81xK"
    cfg = {**cfg_for(fake), "accessToken": wrong}
    code, events, stdout, stderr = run_exec(tmp_path, "ShowContact", cfg, {"data": {"id": "1"}})
    assert code == 1
    [event] = events
    assert event["event"] == "error"
    assert event["error"]["status"] == 401 and event["error"]["code"] == "unauthorized"
    assert event["error"]["request_id"]
    assert wrong not in stdout and wrong not in stderr
    assert fake.requests[0].header("Authorization") == f"Bearer {wrong}"  # it was sent, to Intercom only


def test_rate_limit_waits_for_the_reset_then_succeeds(fake, tmp_path):
    contact = fake.add_contact(email="a@x.io")
    reset = int(time.time()) + 1
    fake.fail_next(429, headers={"X-RateLimit-Reset": str(reset)})
    code, events, _, stderr = run_exec(
        tmp_path, "ShowContact", cfg_for(fake), {"data": {"id": contact["id"]}}
    )
    assert code == 0, stderr
    assert [e["event"] for e in events] == ["data"]
    first, second = fake.requests
    assert second.path == first.path and second.at >= reset


def test_server_error_is_retried_for_a_get_but_not_for_a_create(fake, tmp_path):
    contact = fake.add_contact(email="a@x.io")
    fake.fail_next(500, path="/contacts")
    code, _, _, stderr = run_exec(tmp_path, "ShowContact", cfg_for(fake), {"data": {"id": contact["id"]}})
    assert code == 0, stderr
    assert len(fake.requests) == 2
    fake.clear_requests()
    fake.fail_next(500, path="/contacts")
    code, events, _, _ = run_exec(
        tmp_path, "CreateContact", cfg_for(fake), {"data": {"requestBody": {"email": "b@x.io"}}}
    )
    assert code == 1 and events[0]["error"]["status"] == 500
    assert len(fake.requests) == 1  # a create may have been applied: never repeated


def test_invalid_message_sends_no_request_and_names_the_field(fake, tmp_path):
    code, events, _, _ = run_exec(tmp_path, "UpdateContact", cfg_for(fake), {"data": {"requestBody": {}}})
    assert code == 1
    assert events[0]["event"] == "error" and "id" in json.dumps(events[0]["error"])
    assert fake.requests == []


def test_legacy_credentials_of_the_original_component(fake, tmp_path):
    cfg = {"auth_bearerAuth": fake.token, "server": "--- Custom URL", "otherServer": fake.url}
    code, events, _, stderr = run_exec(tmp_path, "listAdmins", cfg, {"data": {}})
    assert code == 0, stderr
    assert events[0]["data"]["type"] == "admin.list"


# ---- bodies that are not JSON objects ---------------------------------------------------------------
def test_event_accepted_without_body(fake, tmp_path):
    body = {"event_name": "ordered", "email": "a@x.io", "created_at": 1717000000}
    code, events, _, stderr = run_exec(
        tmp_path, "createDataEvent", cfg_for(fake), {"data": {"requestBody": body}}
    )
    assert code == 0, stderr
    assert events[0]["data"]["status"] == 202
    assert fake.events == [body]


def test_data_export_download_is_emitted_as_base64_gzip(fake, tmp_path):
    fake.add_contact(email="a@x.io")
    window = {"created_at_after": 1, "created_at_before": 2}
    code, events, _, stderr = run_exec(
        tmp_path, "create_data_export", cfg_for(fake), {"data": {"requestBody": window}}
    )
    assert code == 0, stderr
    job = events[0]["data"]["job_identifier"]
    assert run_exec(tmp_path, "get_data_export", cfg_for(fake), {"data": {"job_identifier": job}})[0] == 0
    code, events, _, stderr = run_exec(
        tmp_path, "Download_data_export", cfg_for(fake), {"data": {"job_identifier": job}}
    )
    assert code == 0, stderr
    data = events[0]["data"]
    content = base64.b64decode(data["content"])
    assert data["contentType"] == "application/octet-stream" and data["size"] == len(content)
    assert gzip.decompress(content).startswith(b"message_id,contact_id")


# ---- conversations: their lists carry the objects under "conversations", not "data" ----------------
@pytest.mark.parametrize(
    "action, msg",
    [
        ("listConversations", {}),
        (
            "searchConversations",
            {
                "requestBody": {
                    "query": {"field": "updated_at", "operator": ">", "value": 0},
                    "pagination": {"per_page": 2},
                }
            },
        ),
    ],
)
def test_conversations_are_emitted_individually_across_pages(fake, tmp_path, action, msg):
    fake.per_page = 2
    ids = [fake.add_conversation(updated_at=1717000000 + i)["id"] for i in range(5)]
    code, events, _, stderr = run_exec(
        tmp_path, action, cfg_for(fake, emitBehaviour="emitIndividually"), {"data": msg}
    )
    assert code == 0, stderr
    assert len(fake.requests) == 3
    assert [e["data"]["id"] for e in data_events(events)] == ids


# ---- credentials verifier through the harness --------------------------------------------------------
@pytest.mark.parametrize("good", [True, False])
def test_verify_credentials_calls_me(fake, tmp_path, good):
    token = fake.token if good else "not-the-token-Hq2"
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({**cfg_for(fake), "accessToken": token}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "elasticio_sailor",
            "verify",
            "--cfg",
            str(cfg_file),
            "--component",
            str(ROOT),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    [request] = fake.requests
    assert (request.method, request.path) == ("GET", "/me")
    assert result.returncode == (0 if good else 1)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["verified"] is good
    if not good:
        assert answer["reason"] == "Invalid access token (Intercom answered 401 unauthorized)"
        assert token not in result.stdout + result.stderr


def test_help_center_collections_follow_page_numbers(fake, tmp_path):
    fake.per_page = 2
    ids = [fake.add_collection(name=f"Collection {i}")["id"] for i in range(5)]
    code, events, _, stderr = run_exec(
        tmp_path, "listAllCollections", cfg_for(fake, emitBehaviour="emitIndividually"), {"data": {}}
    )
    assert code == 0, stderr
    assert [e["data"]["id"] for e in data_events(events)] == ids
    assert [r.query.get("page") for r in fake.requests] == [None, "2", "3"]
