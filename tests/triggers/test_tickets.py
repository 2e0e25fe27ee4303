"""The tickets trigger (POST /tickets/search, Intercom API 2.16) and the ticket dropdowns, on the fake."""

from __future__ import annotations

import pytest

from lib import select_models
from lib.triggers import tickets
from lib.triggers.polling import SearchResource
from tests.in_process import ids, run

from .conftest import BASE

pytestmark = pytest.mark.timeout(60)


def seed(fake, n: int, start: int = BASE, **fields) -> list[str]:
    fake.seed_tickets()
    contact = fake.add_contact(email="t@example.com")
    refs = {"type": "ticket_contacts", "contacts": [{"type": "contact", "id": contact["id"]}]}
    return [fake.add_ticket(updated_at=start + 60 * i, contacts=refs, **fields)["id"] for i in range(n)]


def test_tickets_are_polled_page_by_page_with_api_2_16_then_only_changes(fake, cfg):
    made = seed(fake, 5)
    first = run(tickets, {**cfg, "startTime": BASE, "pageSize": 2})
    assert ids(first) == made
    searches = [r for r in fake.requests if r.path == "/tickets/search"]
    assert len(searches) == 3  # 2 + 2 + 1
    assert {r.header("Intercom-Version") for r in searches} == {"2.16"}
    assert searches[0].body["query"] == {"field": "updated_at", "operator": ">", "value": BASE - 1}
    assert searches[0].body["sort"] == {"field": "updated_at", "order": "ascending"}
    assert first.snapshot["updated_at"] == BASE + 240 and first.snapshot["ids_at_last"] == [made[-1]]
    assert run(tickets, {**cfg, "startTime": BASE}, first.snapshot).data == []
    fake.db["tickets"][made[0]]["updated_at"] = BASE + 1000  # an old ticket changes; a new one appears
    new = fake.add_ticket(updated_at=BASE + 1001, contacts=fake.db["tickets"][made[0]]["contacts"])["id"]
    second = run(tickets, {**cfg, "startTime": BASE}, first.snapshot)
    assert ids(second) == [made[0], new]
    assert [m["metadata"]["recordUid"] for m in second.data] == [made[0], new]


def test_credentials_version_does_not_change_the_tickets_version(fake, cfg):
    seed(fake, 1)
    result = run(tickets, {**cfg, "startTime": BASE, "intercomVersion": "2.8"})
    assert len(result.data) == 1
    assert {r.header("Intercom-Version") for r in fake.requests} == {"2.16"}


def test_ticket_type_and_state_fields_narrow_the_search(fake, cfg):
    bugs = seed(fake, 2)
    refund_type = fake.db["ticket_types"]["89"]
    refunds = [
        fake.add_ticket(
            updated_at=BASE + 500 + i,
            ticket_type=refund_type,
            contacts=fake.db["tickets"][bugs[0]]["contacts"],
        )["id"]
        for i in range(2)
    ]
    resolved = fake.db["ticket_states"]["8003"]
    fake.db["tickets"][refunds[1]]["ticket_state"] = {k: resolved[k] for k in ("type", "id", "category")}
    assert ids(run(tickets, {**cfg, "startTime": BASE, "ticketTypeId": "89"})) == refunds
    resolved_refunds = run(tickets, {**cfg, "startTime": BASE, "ticketTypeId": 89, "state": "resolved"})
    assert ids(resolved_refunds) == refunds[1:]
    query = fake.requests[-1].body["query"]
    assert (
        query["operator"] == "AND"
        and {"field": "ticket_type_id", "operator": "=", "value": "89"} in query["value"]
    )


def test_an_unknown_state_is_a_clear_error_before_any_request(fake, cfg):
    with pytest.raises(ValueError, match="state"):
        tickets.filters({"state": "closed"})


def test_the_trigger_is_a_search_resource_under_tickets():
    assert isinstance(tickets.RESOURCE, SearchResource)
    assert tickets.RESOURCE.items_key == "tickets" and tickets.RESOURCE.lookback == 1


def test_ticket_type_and_state_dropdowns_list_the_workspace_with_api_2_16(fake, cfg):
    fake.seed_tickets()
    fake.db["ticket_types"]["89"]["archived"] = True
    assert select_models.ticket_types(cfg) == {"88": "Bug report (Customer)"}
    states = select_models.ticket_states(cfg)
    assert states == {
        "8000": "Submitted (submitted)",
        "8001": "In progress (in_progress)",
        "8002": "Waiting on customer (waiting_on_customer)",
        "8003": "Resolved (resolved)",
    }
    assert {r.header("Intercom-Version") for r in fake.requests} == {"2.16"}
