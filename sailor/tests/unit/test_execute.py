"""elasticio_sailor.execute: the contract's event shapes, message forms, snapshots, init, and no secrets."""

import io
import json
import logging

import pytest
from elasticio_sailor import ComponentError, Message, component_at, execute, execute_full
from elasticio_sailor.logs import setup_logging

from .conftest import REGION, SECRET


def test_event_shapes_for_every_kind(fixture_dir, cfg):
    events = execute("selfEmit", {}, cfg, component_dir=fixture_dir)
    assert events == [
        {"event": "data", "data": {"n": 1}, "metadata": {}, "attachments": {}},
        {"event": "data", "data": {"n": 2}, "metadata": {"k": "v"}, "attachments": {}},
        {"event": "snapshot", "snapshot": {"a": 1}},
        {"event": "updateSnapshot", "snapshot": {"b": 2}},
        {"event": "rebound", "reason": "busy"},
        {"event": "updateKeys", "keys": {"oauth": {"refresh": "new"}}},
        {"event": "httpReply", "reply": {"statusCode": 201, "body": "ok", "headers": {"x": "y"}}},
        {"event": "error", "error": {"name": "Soft", "message": "not fatal", "code": 7}},
        {"event": "data", "data": {"n": 3}, "metadata": {}, "attachments": {}},
    ]


def test_data_event_carries_id_headers_passthrough_when_set(fixture_dir):
    msg = {
        "data": {"a": 1},
        "metadata": {"oihUid": "o"},
        "headers": {"h": "v"},
        "id": "m1",
        "passthrough": {"step_1": {"x": 1}},
    }
    (event,) = execute("echo", msg, {}, component_dir=fixture_dir)
    assert event == {"event": "data", **msg, "attachments": {}}


@pytest.mark.parametrize(
    "msg", [{"style": "bare"}, {"data": {"style": "bare"}}, Message(data={"style": "bare"})]
)
def test_message_forms(fixture_dir, msg):
    assert execute("returnValue", msg, {}, component_dir=fixture_dir) == [
        {"event": "data", "data": {"x": 3}, "metadata": {}, "attachments": {}}
    ]


def test_error_event_shape_without_stack_and_redacted(fixture_dir, cfg):
    (event,) = execute("raises", {}, cfg, component_dir=fixture_dir)
    assert event == {
        "event": "error",
        "error": {
            "name": "FixtureError",
            "message": "401 Unauthorized (token ***, region ***)",
            "status": 401,
            "code": "unauthorized",
            "request_id": "req-1",
            "headers": {"Authorization": "***"},
        },
    }


def test_snapshot_is_merged_and_trigger_resumes(fixture_dir):
    events, final, outcome = execute_full("poll", {}, {}, {"since": 10}, fixture_dir)
    assert [e["data"]["id"] for e in events if e["event"] == "data"] == [2, 3]
    assert final == {"since": 30} and outcome.errors == 0
    events, final, _ = execute_full("poll", {}, {}, final, fixture_dir)
    assert events == [] and final == {"since": 30}


def test_unknown_function_raises(fixture_dir):
    with pytest.raises(ComponentError, match="nope"):
        execute("nope", {}, {}, component_dir=fixture_dir)


def test_init_hook_runs_first_and_its_failure_is_an_error_event(fixture_dir):
    calls = component_at(fixture_dir).load_module("poll").CALLS
    calls.clear()
    execute("poll", {}, {}, {"since": 99}, fixture_dir)
    assert calls == ["init"]
    events = execute("poll", {}, {"failInit": True}, component_dir=fixture_dir)
    assert events == [{"event": "error", "error": {"name": "RuntimeError", "message": "init failed"}}]


def test_emitted_payload_is_copied_at_emit_time_and_must_be_json(tmp_path):
    from .test_component import make_component

    src = (
        "def process(self, msg, cfg, snapshot):\n"
        "    page = {'n': 1}\n    self.emit('data', page)\n"
        "    page['n'] = 2\n    self.emit('data', page)\n"
        "    self.emit('data', {'bad': object()})\n"
    )
    c, _ = make_component(tmp_path, {"m": src}, {"actions": {"m": {"main": "PKG/m.py"}}})
    events = execute("m", {}, {}, component_dir=c.root)
    assert [e.get("data") for e in events[:2]] == [{"n": 1}, {"n": 2}]
    assert events[2]["event"] == "error" and "not JSON-serialisable" in events[2]["error"]["message"]


def test_component_is_reread_when_component_json_changes(tmp_path):
    from .test_component import make_component

    c, pkg = make_component(
        tmp_path,
        {"m": "def process(self, msg, cfg, snapshot):\n    return {'v': 1}\n"},
        {"actions": {"m": {"main": "PKG/m.py"}}},
    )
    assert component_at(c.root) is component_at(c.root)
    first = component_at(c.root)
    (c.root / "component.json").write_text(json.dumps({"actions": {"m2": {"main": f"{pkg}/m.py"}}}))
    import os

    os.utime(c.root / "component.json", ns=(1, 1))
    assert component_at(c.root) is not first
    assert execute("m2", {}, {}, component_dir=c.root)[0]["data"] == {"v": 1}


def test_secret_never_appears_in_events_or_logs(fixture_dir, cfg):
    buf = io.StringIO()
    handler = setup_logging(buf, logging.DEBUG)
    try:
        events = []
        for function in ("raises", "echo", "selfEmit"):
            events += execute(function, {"data": {}}, cfg, component_dir=fixture_dir)
    finally:
        logging.getLogger().removeHandler(handler)
    text = json.dumps(events) + buf.getvalue()
    assert "FixtureError" in text and "401 Unauthorized" in buf.getvalue()  # the output is really there
    assert SECRET not in text and REGION not in text
