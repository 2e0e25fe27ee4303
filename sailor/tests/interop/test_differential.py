"""Differential test: the same input to the Node sailor and to our worker gives the same publications.

Each sailor gets its own exchange with the same routing-key names and the same environment; the
component is a twin (lib/script.js / lib/script.py) that emits what the message says. Everything
both publish is collected and compared: routing keys, order, AMQP properties, headers and decrypted
bodies, minus values that are random or clock-based by design. Documented deviations are asserted
as such: a fresh messageId per data emit (docs/wire-dialects.md, "Headers") and our error's Python stack.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticio_sailor.testing.amqp import Broker
from elasticio_sailor.testing.elasticio import CIPHER, ElasticioTopology, FakePlatform, worker_env
from elasticio_sailor.testing.node import NODE_COMPONENT, PYTHON_COMPONENT
from elasticio_sailor.testing.process import WorkerProcess

pytestmark = pytest.mark.timeout(180)

KEYS = ("data", "error", "snapshot", "rebound", "reply", "custom.key")
VOLATILE = {"start", "end", "messageId"}


@pytest.fixture(params=[(1, False), (2, True)], ids=["v1", "v2-passthrough"])
def twins(request, rabbitmq, node_sailor) -> Iterator[dict[str, Any]]:
    """Both sailors on the same step; v1 without passthrough, v2 with the step's is_passthrough set."""
    version, passthrough = request.param
    brokers = {kind: Broker(ElasticioTopology()) for kind in ("node", "python")}
    step = {
        "config": {"_account": "acc-9", "region": "eu"},
        "snapshot": {"s": 1},
        "is_passthrough": passthrough,
    }
    procs: list[WorkerProcess] = []
    try:
        with FakePlatform(step) as platform:
            collected, dead = {}, {}
            for kind, broker in brokers.items():
                collected[kind] = broker.queue("all", *KEYS)
                dead[kind] = broker.queue("dead", "dead")
                env = worker_env(
                    broker,
                    platform,
                    "script",
                    ELASTICIO_CONTAINER_ID="container-diff",
                    ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS="ELASTICIO_TENANT_ID",
                    ELASTICIO_TENANT_ID="tenant-7",
                    ELASTICIO_REBOUND_INITIAL_EXPIRATION=60000,
                    ELASTICIO_PROTOCOL_VERSION=version,
                    LOG_LEVEL="info",
                )
                if kind == "node":
                    cmd = [shutil.which("node") or "node", str(node_sailor)]
                    procs.append(WorkerProcess(env, cwd=NODE_COMPONENT, cmd=cmd).wait_ready(30))
                else:
                    procs.append(WorkerProcess(env, cwd=PYTHON_COMPONENT).wait_ready(30))
            yield {
                "brokers": brokers,
                "queues": collected,
                "dead": dead,
                "platform": platform,
                "version": version,
                "passthrough": passthrough,
            }
    finally:
        for proc in procs:
            proc.kill()
        for broker in brokers.values():
            broker.close()


def run_both(twins: dict[str, Any], data: dict[str, Any], count: int, **headers: Any) -> dict[str, list]:
    """Send the same bytes and headers to both sailors; their first `count` publications each."""
    message_id = str(uuid.uuid4())
    version = twins["version"]
    message = {
        "id": message_id,
        "body": data,
        "headers": {},
        "attachments": {},
        "metadata": {"m": 1},
        "passthrough": {"step_0": {"body": {"earlier": True}, "headers": {}}},
    }
    body = CIPHER.encrypt(message, version)
    hdrs = {
        "messageId": message_id,
        "threadId": "thread-diff",
        "stepId": "step_0",
        "x-eio-meta-Lang": "de",
        "protocolVersion": version,
        **headers,
    }
    out = {}
    for kind, broker in twins["brokers"].items():
        broker.publish(body, hdrs)
        out[kind] = [
            normalise(method, props, raw)
            for method, props, raw in broker.get_all(twins["queues"][kind], count, 30)
        ]
    for kind, broker in twins["brokers"].items():
        assert broker.count(twins["queues"][kind]) == 0, f"{kind} published more than {count} messages"
    return out


def normalise(method: Any, props: Any, raw: bytes) -> dict[str, Any]:
    headers = dict(props.headers or {})
    key = method.routing_key
    if key in ("data", "custom.key"):
        body: Any = CIPHER.decrypt(raw, int(headers.get("protocolVersion", 1)))
    elif key == "reply":
        body = CIPHER.decrypt(raw, 1)
    elif key == "error":
        body = json.loads(raw)
        body["error"] = CIPHER.decrypt(body["error"].encode(), 1)
        body["errorInput"] = CIPHER.decrypt(body["errorInput"].encode(), 1) if "errorInput" in body else None
    elif key == "snapshot":
        body = json.loads(raw)
    else:
        body = raw
    return {
        "key": key,
        "headers": {k: v for k, v in headers.items() if k not in VOLATILE},
        "volatile": {k: headers.get(k) for k in VOLATILE},
        "properties": {
            "content_type": props.content_type,
            "content_encoding": props.content_encoding,
            "delivery_mode": props.delivery_mode,
            "expiration": props.expiration,
        },
        "body": body,
    }


def test_every_event_kind_matches_the_node_sailor(twins):
    emits = [
        ["data", {"data": {"n": 1, "ü": "wörld"}}],
        [
            "data",
            {"data": {"n": 2}, "id": "given-id", "headers": {"x-eio-routing-key": "custom.key", "h": 1}},
        ],
        ["snapshot", {"cursor": 5}],
        ["updateSnapshot", {"page": 2}],
        ["updateKeys", {"token": "k"}],
        ["httpReply", {"statusCode": 200, "body": {"ok": True}, "headers": {"a": "b"}}],
        ["rebound", "later"],
        ["error", {"name": "TypeError", "message": "bad input"}],
    ]
    got = run_both(twins, {"emit": emits}, 8, reply_to="reply")
    node, python = got["node"], got["python"]
    assert (
        [p["key"] for p in python]
        == [p["key"] for p in node]
        == ["data", "custom.key", "snapshot", "snapshot", "reply", "rebound", "reply", "error"]
    )
    for ours, theirs in zip(python, node, strict=True):
        assert ours["headers"] == theirs["headers"], ours["key"]
        assert ours["properties"] == theirs["properties"], ours["key"]
        assert set(ours["volatile"]) == set(theirs["volatile"])
        assert isinstance(ours["volatile"]["messageId"], str)
    for i in (0, 1, 2, 3, 4, 5):
        assert python[i]["body"] == node[i]["body"], python[i]["key"]
    assert python[0]["body"]["body"] == {"n": 1, "ü": "wörld"}
    assert python[1]["body"]["id"] == "given-id" and python[1]["body"]["headers"] == {"h": 1}
    if twins["passthrough"]:
        assert set(python[0]["body"]["passthrough"]) == {"step_0", "step_1"}
        assert python[0]["body"]["passthrough"]["step_1"]["body"] == {"n": 1, "ü": "wörld"}
    else:
        assert "passthrough" not in python[0]["body"]
    assert {p["headers"]["protocolVersion"] for p in python[:2]} == {twins["version"]}
    ours_err, node_err = python[7]["body"], node[7]["body"]
    assert {k: ours_err["error"][k] for k in ("name", "message")} == {
        "name": "TypeError",
        "message": "bad input",
    }
    assert {k: node_err["error"][k] for k in ("name", "message")} == {
        "name": "TypeError",
        "message": "bad input",
    }
    assert ours_err["errorInput"] == node_err["errorInput"]
    assert python[6]["body"]["message"] == node[6]["body"]["message"] == "bad input"
    # Deliberate deviation: each data emit gets its own messageId (Node reuses one per input), and
    # an explicit id becomes the messageId in both.
    assert python[1]["volatile"]["messageId"] == node[1]["volatile"]["messageId"] == "given-id"
    assert python[0]["volatile"]["messageId"] != python[2]["volatile"]["messageId"]
    assert node[0]["volatile"]["messageId"] == node[2]["volatile"]["messageId"]
    for kind, broker in twins["brokers"].items():  # an error was emitted: both dead-letter the input
        broker.get(twins["dead"][kind])
    puts = [r for r in twins["platform"].requests if r["method"] == "PUT"]
    assert len(puts) == 2 and puts[0]["path"] == puts[1]["path"] == "/v1/accounts/acc-9"
    assert puts[0]["body"] == puts[1]["body"]


def test_a_thrown_error_matches_the_node_sailor(twins):
    got = run_both(twins, {"raise": "it broke"}, 1)
    (ours,), (theirs,) = got["python"], got["node"]
    assert ours["key"] == theirs["key"] == "error"
    assert ours["headers"] == theirs["headers"]
    assert ours["properties"] == theirs["properties"]
    assert ours["body"]["error"]["message"] == theirs["body"]["error"]["message"] == "it broke"
    assert ours["body"]["errorInput"] == theirs["body"]["errorInput"]
    # Both dead-letter the input (an error was emitted).
    for kind, broker in twins["brokers"].items():
        broker.get(twins["dead"][kind])
        assert broker.count(broker.topo.input) == 0


def test_rebound_limit_matches_the_node_sailor(twins):
    """Over REBOUND_LIMIT (20) both publish "Rebound limit exceeded" and still ack the input."""
    got = run_both(twins, {"emit": [["rebound", "again"]]}, 1, reboundIteration=20)
    (ours,), (theirs,) = got["python"], got["node"]
    assert ours["key"] == theirs["key"] == "error"
    assert ours["headers"] == theirs["headers"]
    assert ours["body"]["error"]["message"] == theirs["body"]["error"]["message"] == "Rebound limit exceeded"
    assert ours["body"]["errorInput"] == theirs["body"]["errorInput"]
    time.sleep(0.5)  # a reject would dead-letter the input within this time
    for kind, broker in twins["brokers"].items():  # acked, not dead-lettered
        assert broker.count(broker.topo.input) == 0 and broker.count(twins["dead"][kind]) == 0
