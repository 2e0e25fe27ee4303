"""End to end, API 2.16: `python -m elasticio_sailor exec` as a subprocess over real HTTP to the fake.

Tickets (create, update, reply, search across pages, the trigger across two polls) and a custom object
instance (created, then fetched), each checking what the fake received (method, path, Intercom-Version 2.16
although the credentials say 2.8) and what was emitted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.fake_intercom import FakeIntercom

ROOT = Path(__file__).resolve().parents[2]
DAY = 1717027200
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server():
    with FakeIntercom(seed=False) as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset(seed=False)
    server.seed_tickets()
    return server


def exec_(
    tmp_path: Path,
    fake: FakeIntercom,
    function: str,
    data: dict | None = None,
    snapshot: dict | None = None,
    **fields,
) -> tuple[list[dict], dict | None]:
    """One run of the harness: (events, the snapshot it wrote, if any). The credentials pin version 2.8."""
    cfg = {
        "accessToken": fake.token,
        "server": "custom",
        "otherServer": fake.url,
        "intercomVersion": "2.8",
        **fields,
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    (tmp_path / "msg.json").write_text(json.dumps({"data": data or {}}))
    args = [
        sys.executable,
        "-m",
        "elasticio_sailor",
        "exec",
        function,
        "--cfg",
        str(tmp_path / "cfg.json"),
        "--msg",
        str(tmp_path / "msg.json"),
        "--component",
        str(ROOT),
    ]
    snap_out = tmp_path / "snap-out.json"
    snap_out.unlink(missing_ok=True)
    if snapshot is not None:
        (tmp_path / "snap.json").write_text(json.dumps(snapshot))
        args += ["--snapshot", str(tmp_path / "snap.json"), "--snapshot-out", str(snap_out)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [e for e in events if e["event"] == "error"] == [], result.stderr[-2000:]
    assert result.returncode == 0, result.stderr[-2000:]
    return events, (json.loads(snap_out.read_text()) if snap_out.exists() else None)


def data(events: list[dict]) -> list[dict]:
    return [e["data"] for e in events if e["event"] == "data"]


def test_a_ticket_is_created_updated_and_replied_to(tmp_path, fake):
    contact = fake.add_contact(email="jane@example.com")
    events, _ = exec_(
        tmp_path,
        fake,
        "createTicket",
        {
            "requestBody": {
                "contacts": [{"id": contact["id"]}],
                "ticket_attributes": {"_default_title_": "Printer on fire"},
            }
        },
        ticket_type_id="88",
    )  # the ticket type from the step field's dropdown
    [ticket] = data(events)
    assert ticket["type"] == "ticket" and ticket["ticket_type"]["id"] == "88"
    assert ticket["ticket_state"]["category"] == "submitted"
    assert ticket["contacts"]["contacts"][0]["id"] == contact["id"]
    [create] = fake.requests
    assert (create.method, create.path) == ("POST", "/tickets")
    assert create.header("Intercom-Version") == "2.16"  # not the credentials' 2.8
    assert create.body == {
        "contacts": [{"id": contact["id"]}],
        "ticket_type_id": "88",
        "ticket_attributes": {"_default_title_": "Printer on fire"},
    }

    events, _ = exec_(
        tmp_path,
        fake,
        "updateTicket",
        {
            "ticket_id": ticket["id"],
            "requestBody": {
                "ticket_state_id": "8001",
                "ticket_attributes": {"_default_description_": "Smoke everywhere"},
            },
        },
    )
    [updated] = data(events)
    assert updated["id"] == ticket["id"] and updated["ticket_state"]["category"] == "in_progress"
    assert updated["ticket_attributes"] == {
        "_default_title_": "Printer on fire",
        "_default_description_": "Smoke everywhere",
    }
    assert [e["metadata"]["recordUid"] for e in events if e["event"] == "data"] == [ticket["id"]]

    events, _ = exec_(
        tmp_path,
        fake,
        "replyTicket",
        {
            "ticket_id": ticket["id"],
            "requestBody": {
                "message_type": "note",
                "type": "admin",
                "admin_id": 991267001,
                "body": "On my way",
            },
        },
    )
    [part] = data(events)
    assert part["type"] == "ticket_part" and part["part_type"] == "note" and part["body"] == "On my way"
    reply = fake.requests[-1]
    assert (reply.method, reply.path) == ("POST", f"/tickets/{ticket['id']}/reply")
    assert reply.body["admin_id"] == "991267001"  # an integer id is sent as its string
    assert [r.header("Intercom-Version") for r in fake.requests] == ["2.16"] * 3
    stored = fake.db["tickets"][ticket["id"]]
    assert stored["ticket_parts"]["ticket_parts"][0]["body"] == "On my way"


def test_ticket_search_follows_every_page_and_emits_each_ticket(tmp_path, fake):
    contact = fake.add_contact(email="jane@example.com")
    refs = {"type": "ticket_contacts", "contacts": [{"type": "contact", "id": contact["id"]}]}
    made = [fake.add_ticket(updated_at=DAY + i, contacts=refs)["id"] for i in range(5)]
    fake.add_ticket(updated_at=DAY - 100, contacts=refs)  # older than the query
    body = {
        "query": {"field": "updated_at", "operator": ">", "value": DAY - 1},
        "sort": {"field": "updated_at", "order": "ascending"},
        "pagination": {"per_page": 2},
    }
    events, _ = exec_(
        tmp_path, fake, "searchTickets", {"requestBody": body}, emitBehaviour="emitIndividually"
    )
    assert [t["id"] for t in data(events)] == made
    assert [e["metadata"]["recordUid"] for e in events if e["event"] == "data"] == made
    searches = [r for r in fake.requests if r.path == "/tickets/search"]
    assert len(searches) == 3  # 2 + 2 + 1
    assert "starting_after" not in searches[0].body["pagination"]
    assert all(search.body["pagination"]["starting_after"] for search in searches[1:])
    assert {r.header("Intercom-Version") for r in searches} == {"2.16"}


def test_the_tickets_trigger_emits_new_tickets_then_only_what_changed(tmp_path, fake):
    contact = fake.add_contact(email="jane@example.com")
    refs = {"type": "ticket_contacts", "contacts": [{"type": "contact", "id": contact["id"]}]}
    made = [fake.add_ticket(updated_at=DAY + 60 * i, contacts=refs)["id"] for i in range(3)]
    events, snapshot = exec_(tmp_path, fake, "newOrUpdatedTickets", snapshot={}, startTime=DAY, pageSize=2)
    assert [t["id"] for t in data(events)] == made
    assert snapshot == {"updated_at": DAY + 120, "ids_at_last": [made[-1]], "startTime": DAY}
    fake.db["tickets"][made[0]]["updated_at"] = DAY + 3600  # changed since the first poll
    events, second = exec_(
        tmp_path, fake, "newOrUpdatedTickets", snapshot=snapshot, startTime=DAY, pageSize=2
    )
    assert [t["id"] for t in data(events)] == [made[0]]
    assert second["updated_at"] == DAY + 3600
    assert {r.header("Intercom-Version") for r in fake.requests} == {"2.16"}


def test_a_custom_object_instance_is_created_then_fetched(tmp_path, fake):
    body = {
        "external_id": "ORDER-1",
        "external_created_at": 1392036272,
        "custom_attributes": {"order_number": "ORDER-1", "total_amount": 99.99},
    }
    events, _ = exec_(
        tmp_path,
        fake,
        "createCustomObjectInstances",
        {"custom_object_type_identifier": "Order", "requestBody": body},
    )
    [created] = data(events)
    assert created["type"] == "Order" and created["external_id"] == "ORDER-1"
    events, _ = exec_(
        tmp_path,
        fake,
        "getCustomObjectInstancesById",
        {"custom_object_type_identifier": "Order", "custom_object_instance_id": created["id"]},
    )
    [fetched] = data(events)
    assert fetched == created
    assert fetched["custom_attributes"] == {"order_number": "ORDER-1", "total_amount": 99.99}
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", "/custom_object_instances/Order"),
        ("GET", f"/custom_object_instances/Order/{created['id']}"),
    ]
    assert {r.header("Intercom-Version") for r in fake.requests} == {"2.16"}
