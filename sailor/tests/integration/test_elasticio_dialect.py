"""The elastic.io dialect without a broker: decoding, header quirks, rebound arithmetic, rate limits."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from elasticio_sailor.dialects.base import (
    Delivery,
    RateLimiter,
    RejectMessage,
    format_error,
    incoming_protocol_version,
)
from elasticio_sailor.dialects.elasticio.dialect import ElasticioDialect
from elasticio_sailor.dialects.elasticio.settings import read_elasticio
from elasticio_sailor.js import js_number
from elasticio_sailor.message import Message
from elasticio_sailor.testing.elasticio import CIPHER, IV, PASSWORD

ENV = {
    "ELASTICIO_FLOW_ID": "flow",
    "ELASTICIO_EXEC_ID": "exec",
    "ELASTICIO_STEP_ID": "step_2",
    "ELASTICIO_CONTAINER_ID": "cont",
    "ELASTICIO_WORKSPACE_ID": "ws",
    "ELASTICIO_USER_ID": "user",
    "ELASTICIO_COMP_ID": "comp",
    "ELASTICIO_FUNCTION": "script",
    "ELASTICIO_API_URI": "http://127.0.0.1:9",
    "ELASTICIO_API_USERNAME": "u",
    "ELASTICIO_API_KEY": "k",
    "ELASTICIO_AMQP_URI": "amqp://guest:guest@h/%2F",
    "ELASTICIO_LISTEN_MESSAGES_ON": "q",
    "ELASTICIO_PUBLISH_MESSAGES_TO": "x",
    "ELASTICIO_DATA_ROUTING_KEY": "d",
    "ELASTICIO_ERROR_ROUTING_KEY": "e",
    "ELASTICIO_REBOUND_ROUTING_KEY": "r",
    "ELASTICIO_SNAPSHOT_ROUTING_KEY": "s",
    "ELASTICIO_MESSAGE_CRYPTO_IV": IV,
    "ELASTICIO_MESSAGE_CRYPTO_PASSWORD": PASSWORD,
    "ELASTICIO_REBOUND_LIMIT": "3",
    "ELASTICIO_REBOUND_INITIAL_EXPIRATION": "1000",
}


def dialect(**env: str) -> ElasticioDialect:
    d = ElasticioDialect(read_elasticio({**ENV, **env}), {**ENV, **env})
    d.step_data = {"config": {"a": 1}, "snapshot": {"s": 0}, "is_passthrough": False}
    d.snapshot = {"s": 0}
    return d


def delivery(message: Any, version: int = 1, **headers: Any) -> Delivery:
    return Delivery(
        body=CIPHER.encrypt(message, version),
        headers={"protocolVersion": version, **headers},
        properties={"content_type": "application/json", "priority": 2},
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 1),
        (1, 1),
        (2, 2),
        ("2", 2),
        ("1", 1),
        (1.5, 1),
        ("abc", 2),
        (b"2", 2),
        (True, 1),
        (3, 2),
    ],
)
def test_protocol_version_is_read_as_the_node_sailor_reads_it(value, expected):
    headers = {} if value is None else {"protocolVersion": value}
    assert incoming_protocol_version(headers) == expected


def test_js_number_edge_cases():
    assert js_number(" 7 ") == 7 and js_number("0x10") == 16 and js_number("") == 0
    assert math.isnan(js_number("7a")) and math.isnan(js_number(object()))


def test_format_error_shapes():
    err = format_error(ValueError("nope"))
    assert list(err)[:3] == ["name", "message", "stack"] and err["name"] == "ValueError"
    assert format_error({"message": "m", "code": 7}) == {
        "name": "Error",
        "message": "m",
        "stack": "Not Available",
        "code": 7,
    }
    assert format_error("plain") == {"name": "Error", "message": "plain", "stack": "Not Available"}
    assert format_error(None)["message"] == "Not Available"


def test_prepare_maps_the_wire_message_and_headers():
    d = dialect()
    message = {
        "id": "in-1",
        "body": {"x": 1},
        "headers": {"h": 1},
        "metadata": {"m": 1},
        "passthrough": {"step_1": {"body": {}}},
    }
    ex = d.prepare(delivery(message, 2, messageId="in-1", reply_to="rk", **{"X-EIO-META-Trace": "t"}))
    assert isinstance(ex.message, Message)
    assert (ex.message.data, ex.message.id, ex.message.metadata) == ({"x": 1}, "in-1", {"m": 1})
    assert ex.message.headers == {"h": 1, "reply_to": "rk"}
    assert ex.cfg == {"a": 1} and ex.snapshot == {"s": 0} and ex.log_context["messageId"] == "in-1"
    out = ex.state["outgoing"]
    assert out["x-eio-meta-trace"] == "t" and out["parentMessageId"] == "in-1" and out["reply_to"] == "rk"
    assert out["threadId"] and out["messageId"] != "in-1"
    ex.cfg["a"] = 2
    assert d.step_data["config"] == {"a": 1}, "cfg is a copy"


@pytest.mark.parametrize("body", [b"", b"junk", CIPHER.encrypt([1, 2], 1), CIPHER.encrypt("text", 1)])
def test_undecodable_or_non_object_bodies_are_rejected(body):
    with pytest.raises(RejectMessage):
        dialect().prepare(Delivery(body=body, headers={}, properties={}))


@pytest.mark.parametrize(("incoming", "expected"), [(None, 1), (1, 2), (2, 3), ("2", 1), (0, 1)])
def test_rebound_iteration_and_expiration(incoming, expected):
    d = dialect()
    headers = {} if incoming is None else {"reboundIteration": incoming}
    ex = d.prepare(delivery({"body": {}}, 1, messageId="m", **headers))
    (pub,) = d.publications(ex, "rebound", "busy")
    assert pub.routing_key == "r" and pub.body == ex.delivery.body
    assert pub.headers["reboundIteration"] == expected and pub.headers["reboundReason"] == "busy"
    assert pub.properties["expiration"] == str(2 ** (expected - 1) * 1000)
    assert pub.properties["priority"] == 2, "the original properties are kept"
    assert not ex.failed


def test_rebound_over_the_limit_is_an_error_but_not_a_failure():
    d = dialect()
    ex = d.prepare(delivery({"body": {}}, 1, messageId="m", reboundIteration=3))
    (pub,) = d.publications(ex, "rebound", "busy")
    assert pub.routing_key == "e"
    assert CIPHER.decrypt(json.loads(pub.body)["error"].encode(), 1)["message"] == "Rebound limit exceeded"
    assert not ex.failed, "the Node sailor acks after the rebound-limit error"


def test_update_snapshot_merges_and_set_is_refused():
    d = dialect()
    ex = d.prepare(delivery({"body": {}}))
    assert d.publications(ex, "updateSnapshot", {"$set": {"a": 1}}) == []
    (pub,) = d.publications(ex, "updateSnapshot", {"page": 3})
    assert json.loads(pub.body) == {"page": 3} and pub.headers["snapshotEvent"] == "updateSnapshot"
    assert d.snapshot == {"s": 0, "page": 3}
    d.publications(ex, "snapshot", {"fresh": True})
    assert d.prepare(delivery({"body": {}})).snapshot == {"fresh": True}


def test_http_reply_without_reply_to_is_an_error():
    d = dialect()
    ex = d.prepare(delivery({"body": {}}))
    (pub,) = d.publications(ex, "httpReply", {"statusCode": 200, "body": "x"})
    assert pub.routing_key == "e" and ex.failed


def test_no_error_replies_drops_the_reply():
    ex_d = dialect(ELASTICIO_NO_ERROR_REPLIES="true")
    ex = ex_d.prepare(delivery({"body": {}}, reply_to="rk"))
    assert [p.routing_key for p in ex_d.publications(ex, "error", {"message": "m"})] == ["e"]
    d = dialect()
    ex = d.prepare(delivery({"body": {}}, reply_to="rk"))
    assert [p.routing_key for p in d.publications(ex, "error", {"message": "m"})] == ["rk", "e"]


def test_rate_limiter_spreads_bursts():
    limiter = RateLimiter(3, 100)
    started = time.monotonic()
    for _ in range(7):
        limiter.acquire()
    assert time.monotonic() - started >= 0.19, "7 acquisitions at 3 per 100 ms need two more windows"


def test_persistent_messages_and_routing_key_override():
    d = dialect(ELASTICIO_AMQP_PERSISTENT_MESSAGES="true")
    ex = d.prepare(delivery({"body": {}}))
    (pub,) = d.publications(ex, "data", Message(data={"a": 1}, headers={"X-Eio-Routing-Key": "elsewhere"}))
    assert pub.properties["delivery_mode"] == 2 and pub.routing_key == "elsewhere"
    assert CIPHER.decrypt(pub.body, 1)["headers"] == {}
    assert (
        dialect()
        .publications(d.prepare(delivery({"body": {}})), "data", {"a": 1})[0]
        .properties["delivery_mode"]
        == 1
    )


def test_passthrough_with_and_without_self():
    incoming = {"id": "in", "body": {"x": 1}, "headers": {}, "passthrough": {"step_0": {"body": {"p": 0}}}}
    d = dialect()
    d.step_data["is_passthrough"] = True
    ex = d.prepare(delivery(incoming, stepId="step_1"))
    wire = CIPHER.decrypt(d.publications(ex, "data", {"data": {"y": 2}})[0].body, 1)
    assert wire["passthrough"] == {
        "step_0": {"body": {"p": 0}},
        "step_2": {"body": {"y": 2}, "headers": {}, "attachments": {}, "metadata": {}},
    }
    d = dialect(ELASTICIO_NO_SELF_PASSTRHOUGH="true")
    d.step_data["is_passthrough"] = True
    ex = d.prepare(delivery(incoming, stepId="step_1"))
    wire = CIPHER.decrypt(d.publications(ex, "data", {"data": {"y": 2}})[0].body, 1)
    assert wire["passthrough"] == {
        "step_0": {"body": {"p": 0}},
        "step_1": {"id": "in", "body": {"x": 1}, "headers": {}},
    }
    d = dialect()  # not a passthrough step: the component's own passthrough (none here) is kept as is
    ex = d.prepare(delivery(incoming))
    assert "passthrough" not in CIPHER.decrypt(d.publications(ex, "data", {"data": {}})[0].body, 1)
