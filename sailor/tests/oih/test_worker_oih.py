"""Our worker in the OIH dialect, as a subprocess, on the real RabbitMQ with fake OIH services.

One worker serves the whole module: everything that differs between tests (function, fields, nodeSettings,
secret) travels in each message's orchestrator token, exactly as in OIH. Outputs are matched to their
input by `parentMessageId`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from pathlib import Path

import pytest
from elasticio_sailor.testing.amqp import Broker
from elasticio_sailor.testing.fake_oih import FakeOih
from elasticio_sailor.testing.oih import (
    DATA_KEY,
    ERROR_KEY,
    STATE_KEY,
    OihTopology,
    make_token,
    orchestrator_message,
    token_claims,
)
from elasticio_sailor.testing.process import start_sailor

from .harness import TWIN_DIR

pytestmark = pytest.mark.timeout(120)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


@pytest.fixture(scope="module")
def oih(rabbitmq: str, tmp_path_factory: pytest.TempPathFactory):
    """(broker, fake services, worker) shared by the module."""
    with FakeOih() as services:
        broker = Broker(OihTopology())
        log = tmp_path_factory.mktemp("oih") / "worker.log"
        worker = start_sailor(broker.topo.env(services_url=services.url), TWIN_DIR, log)
        try:
            broker.wait_consuming(worker)
            yield broker, services, worker
        finally:
            code = worker.stop()
            broker.close()
            assert code == 0, worker.logs()[-3000:]


def send(
    broker: Broker, function: str, body: dict, *, headers: dict | None = None, **claims: object
) -> tuple[str, str]:
    """Send one orchestrator message; returns (messageId, token)."""
    mid = str(uuid.uuid4())
    token = make_token(**token_claims(broker.topo.flow_id, broker.topo.step_id, function, **claims))
    broker.publish(
        *orchestrator_message(broker.topo, body, token=token, headers={"messageId": mid, **(headers or {})})
    )
    return mid, token


def by_key(outputs: list, key: str) -> list:
    return [c for c in outputs if c.routing_key == key]


def test_a_token_message_runs_with_the_secret_and_publishes_to_the_backchannel(oih) -> None:
    broker, services, worker = oih
    services.add_oauth_secret("sec-ok", "intercom-access-token-1")
    body = {"data": {"a": 1}, "metadata": {"recordUid": "r1"}, "attachments": {}, "passthrough": {}}
    mid, token = send(
        broker,
        "echoTwist",
        body,
        secretId="sec-ok",
        fields={"mode": "m1"},
        headers={"x-eio-meta-trace-id": "trace-1", "execId": "exec-abc"},
    )
    outputs = broker.wait_done(mid)
    (data,) = by_key(outputs, DATA_KEY)
    (state,) = by_key(outputs, STATE_KEY)
    assert data.exchange == state.exchange == broker.topo.backchannel
    fp = fingerprint("intercom-access-token-1")
    assert data.json == {
        "data": {"a": 1, "twist": "twisted", "mode": "m1", "tokenFingerprint": fp, "snapshotSeen": {}},
        "metadata": {"recordUid": "r1"},
        "attachments": {},
        "headers": {},
    }
    h = data.headers
    assert {
        k: h[k]
        for k in (
            "taskId",
            "stepId",
            "userId",
            "function",
            "compId",
            "cid",
            "x-eio-routing-key",
            "orchestratorToken",
            "parentMessageId",
            "threadId",
            "x-eio-meta-trace-id",
            "execId",
            "protocolVersion",
        )
    } == {
        "taskId": broker.topo.flow_id,
        "stepId": "step1",
        "userId": "user-1",
        "function": "echoTwist",
        "compId": "comp-twin",
        "cid": 1,
        "x-eio-routing-key": broker.topo.input_key,
        "orchestratorToken": token,
        "parentMessageId": mid,
        "threadId": "trace-1",
        "x-eio-meta-trace-id": "trace-1",
        "execId": "exec-abc",
        "protocolVersion": 1,
    }
    assert UUID.match(h["messageId"]) and isinstance(h["start"], int) and h["end"] >= h["start"]
    assert data.properties["content_type"] == "application/json" and data.properties["delivery_mode"] == 2
    assert state.json == "function complete" and state.headers["messageId"] == h["messageId"]
    assert broker.settlement(mid) == "acked"
    (req,) = [r for r in services.requests_to("/secrets/sec-ok")]
    assert req.authorization == "Bearer iam-token-for-tests"
    everything = b"".join(c.body for c in outputs) + json.dumps([c.headers for c in outputs]).encode()
    assert b"intercom-access-token-1" not in everything
    assert "intercom-access-token-1" not in worker.logs()


def test_messages_without_a_usable_token_are_rejected_and_the_worker_goes_on(oih) -> None:
    broker, _, worker = oih
    no_token, bad_token = str(uuid.uuid4()), str(uuid.uuid4())
    broker.publish(
        *orchestrator_message(broker.topo, {"data": {}}, token=None, headers={"messageId": no_token})
    )
    broker.publish(
        *orchestrator_message(broker.topo, {"data": {}}, token="not-a-jwt", headers={"messageId": bad_token})
    )
    mid, _ = send(broker, "echoTwist", {"data": {"after": True}})
    outputs = broker.wait_done(mid)
    assert by_key(outputs, DATA_KEY)[0].json["data"]["after"] is True
    assert broker.settlement(no_token) == "rejected" and broker.settlement(bad_token) == "rejected"
    assert broker.for_input(no_token) == [] and broker.for_input(bad_token) == []
    assert all(c.headers.get("parentMessageId") not in (no_token, bad_token) for c in broker.drain())
    log = worker.logs()
    assert "no usable orchestratorToken (message has no orchestratorToken header)" in log
    assert "orchestratorToken is not a decodable JWT" in log
    assert worker.alive()


def test_a_failing_secret_fetch_is_an_error_event_not_a_crash(oih) -> None:
    broker, services, worker = oih
    services.state.secret_status["sec-broken"] = 500
    mid, _ = send(broker, "echoTwist", {"data": {"x": 1}}, secretId="sec-broken")
    outputs = broker.wait_done(mid)
    assert by_key(outputs, DATA_KEY) == []
    (err,) = by_key(outputs, ERROR_KEY)
    error = json.loads(err.json["error"])
    assert error["message"] == "Could not fetch secret sec-broken: secret service answered 500"
    assert json.loads(err.json["errorInput"]) == {"data": {"x": 1}}
    assert broker.settlement(mid) == "rejected"
    assert worker.alive()
    mid2, _ = send(broker, "echoTwist", {"data": {"x": 2}})
    assert by_key(broker.wait_done(mid2), DATA_KEY)


def test_jsonata_before_and_after(oih) -> None:
    broker, _, _ = oih
    ns = {
        "applyTransform": "both",
        "transformFunction": '{"data": {"a": data.first & "!"}, "metadata": metadata}',
        "secondTransformFunction": '{"data": {"out": data.a, "twisted": data.twist}, "metadata": metadata}',
    }
    mid, _ = send(broker, "echoTwist", {"data": {"first": "Ada"}, "metadata": {"k": "v"}}, nodeSettings=ns)
    (data,) = by_key(broker.wait_done(mid), DATA_KEY)
    assert data.json == {"data": {"out": "Ada!", "twisted": "twisted"}, "metadata": {"k": "v"}, "headers": {}}


def test_passthrough_from_node_settings(oih) -> None:
    broker, _, _ = oih
    incoming = {"data": {"q": 1}, "passthrough": {"step0": {"data": {"z": 0}}}}
    mid, _ = send(broker, "emitTwo", incoming, nodeSettings={"passthrough": True})
    first, second = by_key(broker.wait_done(mid), DATA_KEY)
    assert first.json["passthrough"] == {
        "step0": {"data": {"z": 0}},
        "step1": {"data": {"n": 1, "input": {"q": 1}}, "metadata": {}, "attachments": {}},
    }
    assert second.json["passthrough"]["step1"]["data"]["n"] == 2


def test_id_linking_looks_up_and_upserts(oih) -> None:
    broker, services, _ = oih
    refs = [
        {"applicationUid": "crm", "recordUid": "crm-1"},
        {"applicationUid": "intercom", "recordUid": "ic-7"},
    ]
    services.state.datahub["oih-1"] = {"id": "oih-1", "refs": refs}
    ns = {"idLinking": True, "applicationUid": "intercom"}
    mid, _ = send(broker, "echoTwist", {"data": {}, "metadata": {"oihUid": "oih-1"}}, nodeSettings=ns)
    (data,) = by_key(broker.wait_done(mid), DATA_KEY)
    assert data.json["metadata"] == {"oihUid": "oih-1"}
    assert services.state.datahub["oih-1"]["refs"][1] == {"applicationUid": "intercom", "recordUid": "ic-7"}

    mid, _ = send(broker, "echoTwist", {"data": {}, "metadata": {"recordUid": "new-ic-9"}}, nodeSettings=ns)
    (data,) = by_key(broker.wait_done(mid), DATA_KEY)
    new_id = data.json["metadata"]["oihUid"]
    assert services.state.datahub[new_id]["refs"] == [{"recordUid": "new-ic-9", "applicationUid": "intercom"}]
    posts = [r.body for r in services.requests_to("/data/recordId") if r.method == "POST"]
    assert {"applicationUid": "intercom", "recordUid": "new-ic-9"} in posts


def test_id_linking_gives_the_component_its_record_id(oih) -> None:
    broker, services, _ = oih
    refs = [{"applicationUid": "intercom", "recordUid": "ic-2"}]
    services.state.datahub["oih-2"] = {"id": "oih-2", "refs": refs}
    ns = {
        "idLinking": True,
        "applicationUid": "intercom",
        "applyTransform": "after",
        "transformFunction": '{"data": {"seen": metadata.recordUid}, "metadata": metadata}',
    }
    mid, _ = send(broker, "echoTwist", {"data": {}, "metadata": {"oihUid": "oih-2"}}, nodeSettings=ns)
    (data,) = by_key(broker.wait_done(mid), DATA_KEY)
    assert data.json["data"] == {"seen": "ic-2"} and data.json["metadata"] == {"oihUid": "oih-2"}


def test_snapshot_round_trip(oih) -> None:
    broker, services, _ = oih
    flow = broker.topo.flow_id
    services.state.snapshots.pop((flow, "step1"), None)
    for expected in (1, 2):
        mid, _ = send(broker, "countSnapshot", {"data": {}})
        outputs = broker.wait_done(mid)
        (snap,) = [c for c in outputs if c.exchange == broker.topo.collector]
        assert snap.routing_key == broker.topo.snapshot_key and snap.json == {"count": expected}
        assert snap.headers["snapshotEvent"] == "snapshot" and snap.headers["tenant"] == "tenant-1"
        assert by_key(outputs, DATA_KEY)[0].json["data"] == {"count": expected}
        # play the snapshots service: store what the component emitted under (taskId, stepId)
        services.state.snapshots[(snap.headers["taskId"], snap.headers["stepId"])] = snap.json
    gets = services.requests_to(f"/snapshots/flows/{flow}/steps/step1")
    assert len(gets) >= 2 and all(r.authorization == "Bearer iam-token-for-tests" for r in gets)


def test_an_exception_is_an_error_on_the_backchannel(oih) -> None:
    broker, _, worker = oih
    mid, token = send(broker, "fail", {"data": {"reason": "boom"}})
    outputs = broker.wait_done(mid)
    (err,) = by_key(outputs, ERROR_KEY)
    assert err.exchange == broker.topo.backchannel and set(err.json) == {"error", "errorInput"}
    error = json.loads(err.json["error"])
    assert (error["name"], error["message"]) == ("Error", "twin failure: boom") and error["stack"]
    assert json.loads(err.json["errorInput"]) == {"data": {"reason": "boom"}}
    assert err.headers["orchestratorToken"] == token and isinstance(err.headers["end"], int)
    assert by_key(outputs, STATE_KEY)
    assert broker.settlement(mid) == "rejected"
    assert worker.alive()


def test_rebound_goes_to_the_node_exchange_with_a_doubling_expiration(oih) -> None:
    broker, _, _ = oih
    mid, token = send(broker, "reboundOnce", {"data": {"r": 1}}, headers={"reboundIteration": 2})
    outputs = broker.wait_done(mid)
    (rebound,) = [c for c in outputs if c.exchange == broker.topo.node_exchange]
    assert rebound.routing_key == broker.topo.rebound_key and rebound.json == {"data": {"r": 1}}
    assert rebound.properties["expiration"] == "60000"
    assert rebound.headers["reboundIteration"] == 3 and rebound.headers["reboundReason"] == "not yet"
    assert rebound.headers["orchestratorToken"] == token  # so the rebounded message can run again
    assert broker.settlement(mid) == "acked"


def test_sigterm_finishes_concurrent_messages_then_exits_0(rabbitmq: str, tmp_path: Path) -> None:
    """Prefetch 2 runs two slow messages at once; SIGTERM mid-way loses neither (published, then acked)."""
    with FakeOih() as services:
        broker = Broker(OihTopology())
        env = {**broker.topo.env(services_url=services.url), "ELASTICIO_RABBITMQ_PREFETCH_SAILOR": "2"}
        worker = start_sailor(env, TWIN_DIR, tmp_path / "worker.log")
        try:
            broker.wait_consuming(worker)
            started = time.monotonic()
            mids = [send(broker, "slowEcho", {"data": {"seconds": 1.5, "i": i}})[0] for i in range(2)]
            time.sleep(0.5)
            assert worker.stop(timeout=20) == 0, worker.logs()[-3000:]
            elapsed = time.monotonic() - started
            for i, mid in enumerate(mids):
                outputs = broker.wait_done(mid, timeout=5)
                assert by_key(outputs, DATA_KEY)[0].json["data"] == {"seconds": 1.5, "i": i}
            assert elapsed < 2.9  # concurrent, not 2 x 1.5 s
            assert broker.count(broker.topo.input) == 0 and broker.dead_letters() == []
        finally:
            worker.stop()
            broker.close()
