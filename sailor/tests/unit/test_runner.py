"""run_process and friends: every return style, every emit kind, errors, `end` once, emit failures."""

import threading

import pytest
from elasticio_sailor import Message
from elasticio_sailor.component import Component, ComponentError
from elasticio_sailor.runner import (
    EmitFailed,
    apply_snapshot,
    error_payload,
    normalise,
    run_hook,
    run_meta_model,
    run_process,
    run_select_model,
    run_verify,
)

from .conftest import REGION, SECRET


class Recorder:
    """An emit callback remembering (kind, payload, thread) in order."""

    def __init__(self, fail_on: str | None = None):
        self.events: list[tuple[str, object]] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on

    def __call__(self, kind, payload):
        if kind == self.fail_on:
            raise ConnectionError("publish failed")
        self.threads.add(threading.get_ident())
        self.events.append((kind, payload))

    @property
    def kinds(self):
        return [k for k, _ in self.events]


def run(fixture_dir, function, msg=None, cfg=None, snapshot=None, **kw):
    rec = Recorder(kw.pop("fail_on", None))
    outcome = run_process(Component(fixture_dir), function, msg or {}, cfg or {}, snapshot, rec, **kw)
    return rec, outcome


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("message", Message(data={"x": 1}, metadata={"recordUid": "r1"}, id="m1")),
        ("dict", Message(data={"x": 2}, metadata={"m": True})),
        ("bare", Message(data={"x": 3})),
    ],
)
def test_returned_value_is_emitted_as_data_then_end(fixture_dir, style, expected):
    rec, outcome = run(fixture_dir, "returnValue", {"style": style})
    assert rec.events == [("data", expected), ("end", None)]
    assert (outcome.errors, outcome.emitted) == (0, 2)


def test_none_return_emits_only_end(fixture_dir):
    rec, _ = run(fixture_dir, "returnNone")
    assert rec.events == [("end", None)]


def test_generator_items_are_emitted_in_order(fixture_dir):
    rec, _ = run(fixture_dir, "generator", {"count": 4})
    assert rec.events == [*[("data", Message(data={"i": i})) for i in range(4)], ("end", None)]


def test_generator_failing_midway_keeps_earlier_items_then_error(fixture_dir):
    rec, outcome = run(fixture_dir, "generator", {"count": 4, "fail_after": 2})
    assert rec.kinds == ["data", "data", "error", "end"]
    assert rec.events[2][1]["name"] == "ValueError" and rec.events[2][1]["message"] == "stopped at 2"
    assert outcome.errors == 1


def test_async_process_is_awaited(fixture_dir):
    rec, _ = run(fixture_dir, "asyncValue", {"q": 1})
    assert rec.events[0] == ("data", Message(data={"async": True, "in": {"q": 1}}))


def test_async_generator_items_are_emitted(fixture_dir):
    rec, _ = run(fixture_dir, "asyncGenerator")
    assert rec.events == [("data", Message(data={"a": 0})), ("data", Message(data={"a": 1})), ("end", None)]


def test_emits_from_other_threads_are_serialised(fixture_dir, tmp_path):
    from .test_component import make_component

    src = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "def process(self, msg, cfg, snapshot):\n"
        "    with ThreadPoolExecutor(4) as pool:\n"
        "        list(pool.map(lambda i: self.emit('data', {'i': i}), range(50)))\n"
    )
    c, _ = make_component(tmp_path, {"m": src}, {"actions": {"m": {"main": "PKG/m.py"}}})
    active, overlaps = [], []

    def emit(kind, payload):
        if active:
            overlaps.append(kind)
        active.append(1)
        threading.Event().wait(0.001)
        active.pop()

    outcome = run_process(c, "m", {}, {}, None, emit)
    assert outcome.emitted == 51 and overlaps == []


def test_every_emit_kind_and_a_single_end(fixture_dir, cfg):
    rec, outcome = run(fixture_dir, "selfEmit", cfg=cfg)
    assert rec.kinds == [
        "data",
        "data",
        "snapshot",
        "updateSnapshot",
        "rebound",
        "updateKeys",
        "httpReply",
        "error",
        "end",
        "data",
    ]
    payloads = [p for _, p in rec.events]
    assert payloads[0] == Message(data={"n": 1})
    assert payloads[1] == Message(data={"n": 2}, metadata={"k": "v"})
    assert payloads[2:7] == [
        {"a": 1},
        {"b": 2},
        "busy",
        {"oauth": {"refresh": "new"}},
        {"statusCode": 201, "body": "ok", "headers": {"x": "y"}},
    ]
    assert payloads[7] == {"name": "Soft", "message": "not fatal", "code": 7}
    assert payloads[9] == Message(data={"n": 3})  # emitted after end: still delivered, no second end
    assert outcome.errors == 1 and outcome.emitted == 10
    assert len(rec.threads) == 1 and threading.get_ident() in rec.threads  # called on the processing thread


def test_exception_becomes_redacted_error_with_details(fixture_dir, cfg):
    rec, outcome = run(fixture_dir, "raises", cfg=cfg)
    assert rec.kinds == ["error", "end"] and outcome.errors == 1
    err = rec.events[0][1]
    assert list(err)[:3] == ["name", "message", "stack"]
    assert err["name"] == "FixtureError"
    assert err["message"] == "401 Unauthorized (token ***, region ***)"
    assert err["status"] == 401 and err["code"] == "unauthorized" and err["request_id"] == "req-1"
    assert err["headers"] == {"Authorization": "***"}
    assert "raises.py" in err["stack"]
    assert SECRET not in repr(err) and REGION not in repr(err)


def test_module_without_process_and_broken_import_become_errors(fixture_dir):
    for function, name in (
        ("noProcess", "ComponentError"),
        ("brokenImport", "ImportError"),
        ("missingMain", "ComponentError"),
    ):
        rec, _ = run(fixture_dir, function)
        assert rec.kinds == ["error", "end"], function
        assert rec.events[0][1]["name"] == name


def test_msg_cfg_and_snapshot_are_copies(fixture_dir, tmp_path):
    from .test_component import make_component

    src = (
        "def process(self, msg, cfg, snapshot):\n"
        "    cfg['changed'] = True\n    snapshot['changed'] = True\n"
        "    return {'flow': self.get_flow_variables(), 'cfg': self.getConfig()}\n"
    )
    c, _ = make_component(tmp_path, {"m": src}, {"actions": {"m": {"main": "PKG/m.py"}}})
    cfg, snap = {"a": 1}, {"s": 1}
    rec = Recorder()
    run_process(c, "m", {"data": {}}, cfg, snap, rec, flow_variables={"v": 1})
    assert cfg == {"a": 1} and snap == {"s": 1}
    assert rec.events[0][1].data == {"flow": {"v": 1}, "cfg": {"a": 1}}


def test_unknown_emit_kind_is_an_error_of_the_component(fixture_dir, tmp_path):
    from .test_component import make_component

    src = "def process(self, msg, cfg, snapshot):\n    self.emit('dataa', {})\n"
    c, _ = make_component(tmp_path, {"m": src}, {"actions": {"m": {"main": "PKG/m.py"}}})
    rec = Recorder()
    run_process(c, "m", {}, {}, None, rec)
    assert rec.kinds == ["error", "end"] and "unknown emit kind 'dataa'" in rec.events[0][1]["message"]


def test_failing_callback_raises_emit_failed_and_stops_further_emits(fixture_dir):
    rec = Recorder(fail_on="snapshot")
    with pytest.raises(EmitFailed, match="publish failed"):
        run_process(Component(fixture_dir), "selfEmit", {}, {}, None, rec)
    assert rec.kinds == ["data", "data"]  # nothing after the failed publish, no error, no end


def test_failing_end_raises_emit_failed(fixture_dir):
    with pytest.raises(EmitFailed):
        run_process(Component(fixture_dir), "returnNone", {}, {}, None, Recorder(fail_on="end"))


def test_normalise_payloads():
    assert normalise("rebound", ValueError("later")) == "later"
    assert normalise("end", "ignored") is None
    assert normalise("snapshot", None) == {}
    with pytest.raises(TypeError, match="takes a dict"):
        normalise("updateKeys", [1])


def test_error_payload_forms():
    assert error_payload("plain") == {"name": "Error", "message": "plain", "stack": "Not Available"}
    assert error_payload({"message": "m"}) == {"name": "Error", "message": "m"}

    class Bad(Exception):
        def to_dict(self):
            raise RuntimeError("nope")

    class Odd(Exception):
        def to_dict(self):
            return {"when": __import__("datetime").date(2024, 1, 2), "ids": {1}}

    odd = error_payload(Odd("o"))
    assert odd["when"] == "2024-01-02" and odd["ids"] == "{1}"
    out = error_payload(Bad("x"))
    assert out["message"] == "x" and out["detailsError"].startswith("to_dict() failed")
    masked = error_payload(RuntimeError("key abcdef1234 leaked"), {"abcdef1234"})
    assert masked["message"] == "key *** leaked" and "abcdef1234" not in masked["stack"]


def test_apply_snapshot():
    assert apply_snapshot({"a": 1, "b": 1}, "updateSnapshot", {"b": 2}) == {"a": 1, "b": 2}
    assert apply_snapshot({"a": 1}, "snapshot", {"c": 3}) == {"c": 3}


def test_hooks_run_with_copies(fixture_dir):
    c = Component(fixture_dir)
    calls = c.load_module("poll").CALLS
    calls.clear()
    assert run_hook(c, "poll", "startup", {"a": 1}) == {"started": True}
    run_hook(c, "poll", "init", {})
    run_hook(c, "poll", "shutdown", {}, {"started": True})
    assert calls == ["startup", "init", ("shutdown", {"started": True})]
    assert run_hook(c, "echo", "init", {}) is None
    with pytest.raises(RuntimeError, match="init failed"):
        run_hook(c, "poll", "init", {"failInit": True})


def test_verify_results(fixture_dir, tmp_path):
    c = Component(fixture_dir)
    assert run_verify(c, {"apiSecretValue": "good-secret"}) == {"verified": True}
    assert run_verify(c, {"apiSecretValue": "quiet-secret"}) == {"verified": False, "reason": "wrong"}
    failed = run_verify(c, {"apiSecretValue": SECRET})
    assert failed == {"verified": False, "reason": "HTTP 401 for token ***"}
    from .test_component import make_component

    bare, _ = make_component(tmp_path, {}, {"actions": {}})
    assert run_verify(bare, {}) == {"verified": True}


def test_select_and_meta_model(fixture_dir):
    c = Component(fixture_dir)
    assert run_select_model(c, "poll", "kinds", {}) == {"a": "Kind A", "b": "Kind B"}
    assert run_meta_model(c, "poll", {})["out"]["properties"]["id"] == {"type": "number"}
    with pytest.raises(ComponentError, match="no nope"):
        run_select_model(c, "poll", "nope", {})
    with pytest.raises(ComponentError, match="getMetaModel"):
        run_meta_model(c, "echo", {})
