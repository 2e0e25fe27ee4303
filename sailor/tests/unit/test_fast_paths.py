"""The per-call fast paths of execute: json_copy, handed-over data, cached roots/modules/secrets.

Each fast path must give the same answer as the slow one it replaces; these tests compare them.
"""

import json
import math
import os

import pytest
from elasticio_sailor import component_at, event_dict, execute
from elasticio_sailor.message import HANDOVER_ATTR, Message, json_copy
from elasticio_sailor.runner import PayloadError

from .test_component import make_component


class _Int(int):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, "x", None, True, {"b": []}], "c": {}},
        [{"n": i, "s": "é\ud800"} for i in range(3)],
        {"t": (1, 2), "n": 1},  # a tuple becomes a list
        {1: "int key", "x": {2.5: 1, None: 2, True: 3}},  # keys become strings
        {"sub": _Int(3)},  # a subclass: json's answer
        {"deep": json.loads("[" * 150 + "]" * 150)},  # deeper than the fast path goes
        "just a string",
        7,
        None,
    ],
)
def test_json_copy_equals_the_json_round_trip(value):
    expected = json.loads(json.dumps(value))
    got = json_copy(value)
    assert got == expected and json.dumps(got) == json.dumps(expected)


def test_json_copy_is_independent_of_the_original():
    inner = {"k": [1, {"z": 2}]}
    value = {"a": inner, "b": inner}  # shared twice: two independent copies, as json gives
    out = json_copy(value)
    inner["k"][1]["z"] = 99
    assert out == {"a": {"k": [1, {"z": 2}]}, "b": {"k": [1, {"z": 2}]}}
    assert out["a"] is not out["b"]


def test_json_copy_nan_and_refusals_match_json():
    assert math.isnan(json_copy({"x": float("nan")})["x"])
    for bad in ({"x": object()}, {"x": {1, 2}}, {"x": b"bytes"}, {(1, 2): "tuple key"}):
        with pytest.raises(TypeError):
            json.dumps(bad)
        with pytest.raises(TypeError):
            json_copy(bad)
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        json_copy(circular)


class _HandOver(dict):
    __slots__ = ()


setattr(_HandOver, HANDOVER_ATTR, True)


def test_handed_over_data_is_neither_copied_nor_checked_but_the_rest_is():
    data = {"page": [1, 2]}
    metadata = {"m": {"n": 1}}
    msg = Message.from_any(_HandOver(data=data, metadata=metadata))
    assert msg.data_handed_over and not Message.from_any({"data": data}).data_handed_over
    event = event_dict("data", msg)
    assert event == {"event": "data", "data": data, "metadata": {"m": {"n": 1}}, "attachments": {}}
    assert event["data"] is data  # handed over: no copy
    assert event["metadata"] is not metadata and event["metadata"]["m"] is not metadata["m"]
    with pytest.raises(PayloadError):  # metadata is still checked
        event_dict("data", Message.from_any(_HandOver(data={}, metadata={"bad": object()})))
    # a plain dict with the same content is copied as before
    plain = event_dict("data", Message.from_any({"data": data}))
    assert plain["data"] == data and plain["data"] is not data


def test_handover_needs_the_class_attribute_to_be_true():
    class Other(dict):
        sailor_data_handover = "yes"

    assert not Message.from_any(Other(data={})).data_handed_over
    assert Message.from_any(_HandOver(data=None)).data_handed_over
    assert event_dict("data", Message.from_any(_HandOver(data=None)))["data"] is None


def test_component_at_relative_dir_follows_the_working_directory(tmp_path, monkeypatch):
    source = "def process(self, msg, cfg, snapshot):\n    return {'v': %r}\n"
    a, _ = make_component(tmp_path / "a", {"m": source % "a"}, {"actions": {"m": {"main": "PKG/m.py"}}})
    b, _ = make_component(tmp_path / "b", {"m": source % "b"}, {"actions": {"m": {"main": "PKG/m.py"}}})
    monkeypatch.chdir(a.root.parent)
    assert component_at("comp").root == a.root
    assert execute("m", {}, {}, component_dir="comp")[0]["data"] == {"v": "a"}
    monkeypatch.chdir(b.root.parent)
    assert component_at("comp").root == b.root
    assert execute("m", {}, {}, component_dir="comp")[0]["data"] == {"v": "b"}
    assert component_at(os.fspath(b.root)) is component_at(b.root)


def test_module_of_a_function_is_found_once_and_errors_are_not_cached(tmp_path):
    source = "X = 1\ndef process(self, msg, cfg, snapshot):\n    return None\n"
    c, pkg = make_component(
        tmp_path, {"m": source}, {"actions": {"m": {"main": "PKG/m.py"}, "late": {"main": "PKG/late.py"}}}
    )
    assert c.load_module("m") is c.load_module("m") and c.hook("m", "init") is None
    with pytest.raises(Exception, match="not found"):
        c.load_module("late")
    (c.root / pkg / "late.py").write_text("Y = 2\n")
    assert c.load_module("late").Y == 2


def test_secret_values_cached_answer_equals_the_walk():
    from elasticio_sailor import logs

    cfg = {
        "apiSecretValue": "s3cr3t-T0ken",
        "server": "https://u:pw-1234@h.example",
        "n": 30,
        "accessToken": "tok-12345",
    }
    fields = ("apiSecretValue", "server")
    expected = logs._secret_values(cfg, frozenset(fields))
    assert expected == {"s3cr3t-T0ken", "pw-1234", "tok-12345"}
    first = logs.secret_values(cfg, fields)
    first.add("caller's own")  # the caller may change its set; the cache does not see it
    assert logs.secret_values(dict(cfg), list(fields)) == expected
    assert logs.secret_values({**cfg, "accessToken": "tok-67890"}, fields) == (expected - {"tok-12345"}) | {
        "tok-67890"
    }
    assert logs.secret_values(cfg, ("apiSecretValue",)) == {"s3cr3t-T0ken", "tok-12345"}
    nested = {"auth": {"password": "hunter22"}, "list": ["x"]}  # unhashable: walked every time
    assert logs.secret_values(nested) == {"hunter22"}
    nested["auth"]["password"] = "hunter33"
    assert logs.secret_values(nested) == {"hunter33"}


def test_fast_deepcopy_equals_deepcopy():
    import copy

    from elasticio_sailor.runner import _deepcopy

    flat = {"a": "x", "b": 1, "c": None, "d": 2.5, "e": True}
    out = _deepcopy(flat)
    assert out == copy.deepcopy(flat) and out is not flat
    nested = {"a": {"b": [1]}, "t": (1, [2])}
    out = _deepcopy(nested)
    assert out == nested and out["a"] is not nested["a"] and out["t"][1] is not nested["t"][1]


def test_get_logger_keeps_its_redacting_filter():
    import logging

    from elasticio_sailor.logs import RedactingFilter, get_logger

    logger = get_logger("fast-path-test")
    assert get_logger("fast-path-test") is logger is logging.getLogger("fast-path-test")
    for f in list(logger.filters):
        logger.removeFilter(f)
    assert any(isinstance(f, RedactingFilter) for f in get_logger("fast-path-test").filters)
    assert sum(isinstance(f, RedactingFilter) for f in get_logger("fast-path-test").filters) == 1
