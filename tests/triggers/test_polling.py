"""Polling triggers against the fake Intercom on loopback: pages, changes, same-second ties, crashes."""

from __future__ import annotations

import time

import pytest

from lib.actions import list_contacts
from lib.intercom.errors import ConfigurationError
from lib.triggers import companies, contacts, conversations, data_attributes, help_centers, segments
from lib.triggers.polling import Position, parse_time
from tests.in_process import ids, run

from .conftest import BASE

pytestmark = pytest.mark.timeout(60)


def seed_contacts(fake, n: int, step: int = 60, start: int = BASE) -> list[str]:
    return [fake.add_contact(email=f"c{i}@example.com", updated_at=start + i * step)["id"] for i in range(n)]


def test_first_poll_follows_every_page_in_update_order_and_saves_after_each(fake, cfg):
    made = seed_contacts(fake, 7)
    result = run(contacts, {**cfg, "startTime": BASE, "pageSize": 3})
    assert ids(result) == made
    assert [m["metadata"]["recordUid"] for m in result.data] == made
    kinds = [k for k, _ in result.events]
    # 3 + 3 + 1 objects, a snapshot after each page's data
    assert kinds == ["data"] * 3 + ["snapshot"] + ["data"] * 3 + ["snapshot"] + ["data", "snapshot"]
    assert result.snapshot["updated_at"] == BASE + 6 * 60 and result.snapshot["ids_at_last"] == [made[-1]]
    searches = [r for r in fake.requests if r.path == "/contacts/search"]
    assert len(searches) == 3
    assert searches[0].body["sort"] == {"field": "updated_at", "order": "ascending"}
    assert searches[1].body["pagination"]["starting_after"]


def test_second_poll_emits_only_what_changed(fake, cfg):
    made = seed_contacts(fake, 5)
    first = run(contacts, {**cfg, "startTime": BASE, "pageSize": 2})
    assert len(first.data) == 5
    again = run(contacts, {**cfg, "startTime": BASE, "pageSize": 2}, first.snapshot)
    assert again.data == [] and again.snapshot is None  # nothing new: the position is unchanged
    fake.db["contacts"][made[1]]["updated_at"] = BASE + 10_000  # a change to an old contact
    new = fake.add_contact(email="new@example.com", updated_at=BASE + 10_001)["id"]
    third = run(contacts, {**cfg, "startTime": BASE, "pageSize": 2}, first.snapshot)
    assert ids(third) == [made[1], new]
    assert third.snapshot["updated_at"] == BASE + 10_001


def test_two_objects_updated_in_the_same_second_are_each_emitted_once(fake, cfg):
    a = fake.add_contact(email="a@example.com", updated_at=BASE + 100)["id"]
    b = fake.add_contact(email="b@example.com", updated_at=BASE + 100)["id"]  # same second, next page
    first = run(contacts, {**cfg, "startTime": BASE, "pageSize": 1})
    assert sorted(ids(first)) == sorted([a, b])
    assert first.snapshot == {"updated_at": BASE + 100, "ids_at_last": sorted([a, b]), "startTime": BASE}
    # a third object appears with that same second (e.g. indexed late): it is new, the other two are not
    c = fake.add_contact(email="c@example.com", updated_at=BASE + 100)["id"]
    second = run(contacts, {**cfg, "startTime": BASE, "pageSize": 1}, first.snapshot)
    assert ids(second) == [c]
    assert run(contacts, {**cfg, "startTime": BASE}, second.snapshot).data == []


def test_a_crash_between_pages_re_emits_at_most_one_page(fake, cfg):
    made = seed_contacts(fake, 9)
    step = {**cfg, "startTime": BASE, "pageSize": 3}
    crashed = run(contacts, step, crash_after=4)  # dies while emitting the second page's objects
    assert crashed.crashed and ids(crashed) == made[:4]
    saved = crashed.snapshot  # the platform kept the snapshot emitted after page 1
    assert saved["updated_at"] == BASE + 2 * 60
    rerun = run(contacts, step, saved)
    assert ids(rerun) == made[3:]
    duplicates = set(ids(crashed)) & set(ids(rerun))
    assert duplicates == {made[3]} and len(duplicates) <= 3  # at most one page again
    assert set(ids(crashed)) | set(ids(rerun)) == set(made)


def test_empty_result_emits_nothing_and_keeps_the_position(fake, cfg):
    result = run(contacts, {**cfg, "startTime": BASE})
    assert result.data == [] and result.snapshot == {"updated_at": BASE, "ids_at_last": [], "startTime": BASE}
    assert [r.path for r in fake.requests] == ["/contacts/search"]
    again = run(contacts, {**cfg, "startTime": BASE}, result.snapshot)
    assert again.events == []  # no data, and the unchanged snapshot is not re-sent


def test_first_run_without_start_time_starts_now(fake, cfg):
    seed_contacts(fake, 3)
    before = int(time.time())
    result = run(contacts, cfg)
    assert result.data == [] and fake.requests == []  # nothing older than now, no call needed
    assert before <= result.snapshot["updated_at"] <= int(time.time())
    fresh = fake.add_contact(email="later@example.com", updated_at=result.snapshot["updated_at"] + 1)["id"]
    later = run(contacts, {**cfg, "lagSeconds": -5}, result.snapshot)
    assert ids(later) == [fresh]


def test_changes_newer_than_the_settle_time_wait_for_the_next_poll(fake, cfg):
    now = int(time.time())
    old = fake.add_contact(email="old@example.com", updated_at=now - 600)["id"]
    recent = fake.add_contact(email="recent@example.com", updated_at=now - 5)["id"]
    first = run(contacts, {**cfg, "startTime": now - 3600, "lagSeconds": 60})
    assert ids(first) == [old]
    second = run(contacts, {**cfg, "startTime": now - 3600, "lagSeconds": 0}, first.snapshot)
    assert ids(second) == [recent]


def test_contact_role_filter_and_emit_page(fake, cfg):
    user = fake.add_contact(role="user", updated_at=BASE + 1)["id"]
    fake.add_contact(role="lead", updated_at=BASE + 2)
    user2 = fake.add_contact(role="user", updated_at=BASE + 3)["id"]
    result = run(contacts, {**cfg, "startTime": BASE, "role": "user", "emitBehaviour": "emitPage"})
    assert len(result.data) == 1
    page = result.data[0]["data"]
    assert page["type"] == "contacts.changes" and [c["id"] for c in page["data"]] == [user, user2]
    query = fake.requests[0].body["query"]
    assert {"field": "role", "operator": "=", "value": "user"} in query["value"]


def test_fetch_all_emits_one_message_then_the_snapshot(fake, cfg):
    made = seed_contacts(fake, 5)
    result = run(contacts, {**cfg, "startTime": BASE, "pageSize": 2, "emitBehaviour": "fetchAll"})
    assert [k for k, _ in result.events] == ["data", "snapshot"]
    assert [c["id"] for c in result.data[0]["data"]["data"]] == made


@pytest.mark.parametrize("spelling", ["emitpage", " EmitPage ", "EMITPAGE"])
def test_emit_behaviour_is_spelt_as_an_action_takes_it(fake, cfg, spelling):
    """A trigger reads emitBehaviour by the rule an action reads it with: case and blanks do not matter."""
    made = seed_contacts(fake, 3)
    result = run(contacts, {**cfg, "startTime": BASE, "emitBehaviour": spelling})
    assert [m["data"]["type"] for m in result.data] == ["contacts.changes"]
    assert [c["id"] for c in result.data[0]["data"]["data"]] == made


@pytest.mark.parametrize(
    "field",
    [{"emitBehaviour": "everything"}, {"maxPages": "inf"}, {"maxPages": "nan"}, {"maxRetries": "2.5"}],
)
def test_a_bad_step_field_is_the_same_error_in_a_trigger_and_an_action(fake, cfg, field):
    """Same class, field and message, so the sailor reports both alike (its error event: name, message,
    and the error's to_dict(), which carries the field)."""
    bad = {**cfg, "startTime": BASE, **field}
    with pytest.raises(ConfigurationError) as in_trigger:
        run(contacts, bad)
    with pytest.raises(ConfigurationError) as in_action:
        list_contacts.process(None, {}, bad)
    name = next(iter(field))
    assert in_trigger.value.to_dict() == in_action.value.to_dict()
    assert in_trigger.value.field == name
    assert str(in_trigger.value) == str(in_action.value)
    assert str(in_trigger.value).startswith(f"Field '{name}' must be ")
    assert fake.requests == []


def test_conversations_state_filter_and_changes(fake, cfg):
    open_ = fake.add_conversation(state="open", updated_at=BASE + 10)["id"]
    fake.add_conversation(state="closed", open=False, updated_at=BASE + 20)
    first = run(conversations, {**cfg, "startTime": BASE, "state": "open"})
    assert ids(first) == [open_]
    fake.db["conversations"][open_]["updated_at"] = BASE + 30
    second = run(conversations, {**cfg, "startTime": BASE, "state": "open"}, first.snapshot)
    assert ids(second) == [open_]  # once per change
    assert run(conversations, {**cfg, "startTime": BASE, "state": "open"}, second.snapshot).data == []


def test_companies_scroll_filters_client_side_and_survives_a_crash(fake, cfg):
    fake.scroll_page_size = 2
    old = fake.add_company(name="Old", updated_at=BASE - 100)["id"]
    made = [fake.add_company(name=f"C{i}", updated_at=BASE + 50 - i)["id"] for i in range(5)]  # not sorted
    step = {**cfg, "startTime": BASE}
    # pages: [Old, C0] [C1, C2] [C3, C4]; the run dies while emitting C3
    crashed = run(companies, step, crash_after=4)
    assert crashed.crashed and ids(crashed) == made[:4]
    assert crashed.snapshot["updated_at"] == BASE  # the position holds until the scan is complete...
    assert set(crashed.snapshot["emitted"]) == set(made[:3])  # ...but what was emitted is recorded
    rerun = run(companies, step, crashed.snapshot)
    assert ids(rerun) == made[3:] and old not in ids(rerun)  # only C3 again: at most one page
    # the complete scan moved the position to (about) its start and dropped the bookkeeping
    assert rerun.snapshot["updated_at"] > BASE + 50 and "emitted" not in rerun.snapshot
    assert run(companies, step, rerun.snapshot).data == []
    fake.db["companies"][made[2]]["updated_at"] = int(time.time()) - 5
    changed = run(companies, step, rerun.snapshot)
    assert ids(changed) == [made[2]]
    assert changed.snapshot["emitted"] == {made[2]: fake.db["companies"][made[2]]["updated_at"]}
    assert run(companies, step, changed.snapshot).data == []  # recorded: not emitted twice


@pytest.mark.parametrize(
    ("module", "adder", "extra"),
    [
        (segments, "add_segment", {}),
        (data_attributes, "add_data_attribute", {"model": "contact"}),
        (help_centers, "add_help_center", {}),
    ],
)
def test_single_response_lists(fake, cfg, module, adder, extra):
    first = getattr(fake, adder)(updated_at=BASE + 1, **extra)["id"]
    getattr(fake, adder)(updated_at=BASE - 1, **extra)
    result = run(module, {**cfg, "startTime": BASE})
    assert ids(result) == [first]
    assert run(module, {**cfg, "startTime": BASE}, result.snapshot).data == []


def test_a_changed_start_time_restarts_the_position(fake, cfg):
    made = seed_contacts(fake, 3, step=1000)
    first = run(contacts, {**cfg, "startTime": BASE + 1500})
    assert ids(first) == [made[2]]
    again = run(contacts, {**cfg, "startTime": BASE}, first.snapshot)
    assert ids(again) == made


def test_bad_settings_fail_clearly(fake, cfg):
    with pytest.raises(ValueError, match="emitBehaviour"):
        run(contacts, {**cfg, "startTime": BASE, "emitBehaviour": "everything"})
    with pytest.raises(ValueError, match="startTime"):
        run(contacts, {**cfg, "startTime": "yesterday"})
    with pytest.raises(ValueError, match="'pageSize' must be a whole number"):
        run(contacts, {**cfg, "startTime": BASE, "pageSize": "ten"})
    assert fake.requests == []  # nothing was sent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-29T16:26:40Z", BASE),
        ("2024-05-29T16:26:40", BASE),
        ("2024-05-29", BASE - 59200),
        (BASE, BASE),
        (str(BASE), BASE),
        (BASE * 1000, BASE),
        ("", None),
        (None, None),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_position_rules():
    pos = Position(updated_at=100, ids_at_last={"a"})
    assert not pos.is_new("a", 100) and pos.is_new("b", 100) and not pos.is_new("z", 99)
    pos.record("c", 150)
    assert not pos.is_new("c", 150) and pos.is_new("c", 151)
    pos.settle(120)  # a complete scan started at 120
    assert pos.updated_at == 120 and pos.emitted == {"c": 150} and pos.ids_at_last == set()
    pos.advance("d", 200)
    assert pos.updated_at == 200 and pos.ids_at_last == {"d"} and pos.emitted == {}


class PagesClient:
    """A stand-in client serving fixed pages (for the poller's bookkeeping, without HTTP)."""

    def __init__(self, pages: list[list[dict]]) -> None:
        self.pages = pages

    def paginate(self, *args, **kwargs):
        for items in self.pages:
            yield {"data": items}


def test_a_large_scan_stops_saving_per_page_past_the_limit_and_ends_complete(monkeypatch):
    from lib.triggers import polling

    monkeypatch.setattr(polling, "MAX_TRACKED", 4)
    pages = [[{"id": f"{p}-{i}", "updated_at": BASE + 1 + p} for i in range(2)] for p in range(4)]
    events: list[tuple[str, dict]] = []
    polling.poll(
        companies.RESOURCE,
        PagesClient(pages),
        {"startTime": BASE},
        None,
        lambda kind, payload: events.append((kind, payload)),
        now=lambda: BASE + 10_000,
    )
    kinds = [k for k, _ in events]
    # per-page snapshots while at most 4 ids are tracked (pages 1 and 2), then only the final one
    assert kinds == ["data"] * 2 + ["snapshot"] + ["data"] * 2 + ["snapshot"] + ["data"] * 4 + ["snapshot"]
    assert len(events[5][1]["emitted"]) == 4
    assert events[-1][1] == {
        "updated_at": BASE + 10_000 - polling.CLOCK_MARGIN,
        "ids_at_last": [],
        "startTime": BASE,
    }
