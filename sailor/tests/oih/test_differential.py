"""Differential test: the real ferryman (npm, running sailor/tests/oih/node) against our worker (running
its Python twin, sailor/tests/oih/fixtures/twin), fed the same orchestrator messages and tokens.

Both runtimes get their own broker topology (same names, different unique prefix) and their own fake OIH
services seeded identically. For every input message we compare what was published (exchange role, routing
key, properties, header names and values, body) and how the input was settled (acked, rejected =
dead-lettered, or left unsettled). Values that cannot be equal (random ids, timestamps, the per-run prefix,
stack traces) are normalised; everything else must match, except the deltas listed in EXPECTED_DELTAS, where
we deliberately fix a ferryman defect. Each delta is asserted too: it must look exactly as documented.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from elasticio_sailor.testing.amqp import Broker, Captured
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

from .harness import TWIN_DIR, start_ferryman

pytestmark = pytest.mark.timeout(240)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass
class Scenario:
    name: str
    function: str | None
    body: dict[str, Any]
    claims: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    token: str | None = "valid"  # "valid", "none" or a literal (invalid) token


SCENARIOS = [
    Scenario(
        "echo with secret, fields, snapshot, meta header",
        "echoTwist",
        {
            "data": {"a": 1, "s": "x"},
            "metadata": {"recordUid": "r1"},
            "attachments": {},
            "passthrough": {"step0": {"data": {"z": 0}}},
        },
        {"secretId": "sec-ok", "fields": {"mode": "m1"}},
        {"x-eio-meta-trace-id": "trace-1"},
    ),
    Scenario(
        "nodeSettings.passthrough",
        "echoTwist",
        {"data": {"b": 2}, "passthrough": {"p": {"data": {}}}},
        {"nodeSettings": {"passthrough": True}},
    ),
    Scenario(
        "JSONata before and after",
        "echoTwist",
        {"data": {"first": "Ada"}, "metadata": {"k": "v"}},
        {
            "nodeSettings": {
                "applyTransform": "both",
                "transformFunction": '{"data": {"a": data.first & "!"}, "metadata": metadata}',
                "secondTransformFunction": '{"data": {"out": data.a}, "metadata": metadata}',
            }
        },
    ),
    Scenario("two emits", "emitTwo", {"data": {"q": 1}, "metadata": {}, "attachments": {}}),
    Scenario("exception", "fail", {"data": {"reason": "boom"}}),
    Scenario("snapshot", "countSnapshot", {"data": {}}),
    Scenario("rebound", "reboundOnce", {"data": {"r": 1}}, headers={"reboundIteration": 2}),
    Scenario(
        "id linking",
        "echoTwist",
        {"data": {}, "metadata": {"oihUid": "oih-1"}},
        {"nodeSettings": {"idLinking": True, "applicationUid": "intercom"}},
    ),
    Scenario(
        "governance provenance event",
        "echoTwist",
        {"data": {}, "metadata": {"oihUid": "o-9", "recordUid": "r-9"}},
        {"nodeSettings": {"governance": True, "applicationUid": "intercom"}},
    ),
    Scenario("secret service fails", "echoTwist", {"data": {"c": 3}}, {"secretId": "sec-broken"}),
    Scenario("unknown function", "noSuchFunction", {"data": {}}),
    # Last: the ferryman never settles these, and with prefetch 1 it then stops taking messages.
    Scenario("no token", None, {"data": {}}, token="none"),
    Scenario("invalid token", None, {"data": {}}, token="not.a-jwt"),
]

# What we do differently on purpose (see sailor/elasticio_sailor/dialects/oih/dialect.py and the README).
EXPECTED_DELTAS = {
    "no token": "ferryman leaves the message unacked forever; we dead-letter it",
    "invalid token": "same as no token",
    "secret service fails": "ferryman runs the step without credentials and acks; we publish an error + "
    "function complete and dead-letter it",
    "unknown function": "ferryman publishes the error but no 'function complete'; we publish both "
    "(every end reports the step state); error texts differ",
    "*tenantId": "provenance events name the tenant from the token's `tenant` claim (the ferryman reads a "
    "`tenantId` claim the orchestrator never sets, so its events name no tenant)",
    "*execId": "we pass the orchestrator's execId header on (the ferryman only reads ELASTICIO_EXEC_ID, "
    "which OIH never sets)",
}


@dataclass
class Run:
    broker: Broker
    log: str = ""
    inputs: dict[str, tuple[str, str | None, bytes]] = field(default_factory=dict)  # name: (mid, token, body)
    outputs: dict[str, list[Captured]] = field(default_factory=dict)
    settlement: dict[str, str] = field(default_factory=dict)


def _seed(services: FakeOih, topo: OihTopology) -> None:
    services.add_oauth_secret("sec-ok", "intercom-access-token-1")
    services.state.secret_status["sec-broken"] = 500
    services.state.snapshots[(topo.flow_id, topo.step_id)] = {"count": 5}
    services.state.datahub["oih-1"] = {
        "id": "oih-1",
        "refs": [
            {"applicationUid": "crm", "recordUid": "crm-1"},
            {"applicationUid": "intercom", "recordUid": "ic-7"},
        ],
    }


def _run(kind: str, tmp: Path, result: dict[str, Run | BaseException]) -> None:
    try:
        with FakeOih() as services:
            broker = Broker(OihTopology())
            _seed(services, broker.topo)
            env = broker.topo.env(services_url=services.url)
            log = tmp / f"{kind}.log"
            runtime = start_ferryman(env, log) if kind == "ferryman" else start_sailor(env, TWIN_DIR, log)
            run = Run(broker)
            try:
                broker.wait_consuming(runtime, timeout=60)
                for sc in SCENARIOS:
                    mid = str(uuid.uuid4())
                    token = None
                    if sc.token == "valid":
                        token = make_token(
                            **token_claims(
                                broker.topo.flow_id, broker.topo.step_id, str(sc.function), **sc.claims
                            )
                        )
                    elif sc.token != "none":
                        token = sc.token
                    raw = json.dumps(sc.body).encode()
                    broker.publish(
                        *orchestrator_message(
                            broker.topo,
                            raw,
                            token=token,
                            headers={"messageId": mid, "execId": "exec-" + mid[:8], **sc.headers},
                        )
                    )
                    run.inputs[sc.name] = (mid, token, raw)
                runnable = [run.inputs[sc.name][0] for sc in SCENARIOS if sc.token == "valid"]
                broker.wait_for(
                    lambda caps: {c.headers.get("parentMessageId") for c in caps} >= set(runnable), timeout=60
                )
                time.sleep(1.5)  # let trailing publishes (and the ferryman's unawaited ones) arrive
            finally:
                runtime.stop()
                run.log = runtime.logs()
            leftover = broker.leftover_ids()
            dead = broker.dead_ids()
            for sc in SCENARIOS:
                mid = run.inputs[sc.name][0]
                run.outputs[sc.name] = broker.for_input(mid)
                run.settlement[sc.name] = (
                    "rejected" if mid in dead else "unsettled" if mid in leftover else "acked"
                )
            broker.close()
            result[kind] = run
    except BaseException as exc:  # reported by the fixture
        result[kind] = exc


@pytest.fixture(scope="module")
def runs(rabbitmq: str, ferryman_installed: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("differential")
    result: dict[str, Run | BaseException] = {}
    threads = [threading.Thread(target=_run, args=(kind, tmp, result)) for kind in ("ferryman", "ours")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(200)
    for kind in ("ferryman", "ours"):
        value = result.get(kind)
        if isinstance(value, BaseException) or value is None:
            path = tmp / f"{kind}.log"
            log = path.read_text(errors="replace")[-4000:] if path.exists() else ""
            raise AssertionError(f"{kind} run failed: {value!r}\n{log}")
    return result  # type: ignore[return-value]


def _norm_str(value: str, run: Run) -> str:
    return value.replace(run.broker.topo.prefix, "<P>")


def _norm(value: Any, run: Run) -> Any:
    if isinstance(value, str):
        return "<iso-time>" if ISO.match(value) else _norm_str(value, run)
    if isinstance(value, dict):
        return {k: _norm(v, run) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v, run) for v in value]
    return value


def normalise(c: Captured, run: Run, name: str) -> dict[str, Any]:
    mid, token, raw = run.inputs[name]
    topo = run.broker.topo
    roles = {
        topo.backchannel: "backchannel",
        topo.node_exchange: "node",
        topo.collector: "collector",
        topo.event_bus: "event-bus",
    }
    headers: dict[str, Any] = {}
    for k, v in c.headers.items():
        if isinstance(v, bytes):
            v = v.decode()
        if k == "orchestratorToken":
            headers[k] = "<token>" if v == token else v
        elif k in ("start", "end"):
            headers[k] = "<ms>" if isinstance(v, int) else v
        elif k in ("messageId", "threadId") and isinstance(v, str) and UUID.match(v):
            headers[k] = "<uuid>"
        elif k == "parentMessageId" and v == mid:
            headers[k] = "<input messageId>"
        else:
            headers[k] = _norm(v, run)
    body: Any = json.loads(c.body)
    if c.routing_key == ERROR_KEY:
        error = json.loads(body["error"])
        body = {
            "keys": sorted(body),
            "error": {"keys": sorted(error), "name": error["name"], "message": error["message"]},
            "errorInput": body.get("errorInput") == raw.decode(),
        }
    return {
        "exchange": roles.get(c.exchange, c.exchange),
        "routing_key": _norm_str(c.routing_key, run),
        "properties": c.properties,
        "headers": headers,
        "body": _norm(body, run),
    }


def published(run: Run, name: str) -> list[dict[str, Any]]:
    """Normalised publications of one input, in a stable order (by exchange and key, then emission)."""
    items = [normalise(c, run, name) for c in run.outputs[name]]
    return sorted(items, key=lambda p: (p["exchange"], p["routing_key"]))


def without_exec_id(pubs: list[dict[str, Any]], run: Run, name: str) -> list[dict[str, Any]]:
    """Our execId and tenantId deltas: check them, then take them out so the rest can be compared."""
    mid = run.inputs[name][0]
    for p in pubs:
        assert p["headers"].pop("execId") == "exec-" + mid[:8]
        if p["exchange"] == "event-bus":
            agents = p["body"]["payload"]["actedOnBehalfOf"]
            assert agents[1].pop("actedOnBehalfOf") == "tenant-1"
            assert agents[2].pop("id") == "tenant-1"
    return pubs


SAME = [sc.name for sc in SCENARIOS if sc.name not in EXPECTED_DELTAS]


@pytest.mark.parametrize("name", SAME)
def test_same_publications_and_settlement(runs: dict[str, Run], name: str) -> None:
    node, ours = runs["ferryman"], runs["ours"]
    expected = published(node, name)
    actual = without_exec_id(published(ours, name), ours, name)
    assert expected, f"the ferryman published nothing for {name!r}:\n{node.log[-3000:]}"
    for p in expected:
        assert "execId" not in p["headers"]
    if name == "exception":  # stack traces differ by language; the rest of the error must not
        for p in expected + actual:
            if p["routing_key"] == ERROR_KEY:
                assert p["body"]["error"]["keys"] == ["message", "name", "stack"]
    assert actual == expected
    assert ours.settlement[name] == node.settlement[name]


def test_the_shared_scenarios_cover_every_output_kind(runs: dict[str, Run]) -> None:
    keys = {(p["exchange"], p["routing_key"]) for name in SAME for p in published(runs["ferryman"], name)}
    assert {
        ("backchannel", DATA_KEY),
        ("backchannel", STATE_KEY),
        ("backchannel", ERROR_KEY),
        ("event-bus", "provenance"),
        ("collector", "flow-<P>.step1.snapshot"),
        ("node", "flow-<P>.step1.rebound"),
    } <= keys
    assert {runs["ferryman"].settlement[n] for n in SAME} == {"acked", "rejected"}


@pytest.mark.parametrize("name", ["no token", "invalid token"])
def test_delta_unusable_token(runs: dict[str, Run], name: str) -> None:
    node, ours = runs["ferryman"], runs["ours"]
    assert node.outputs[name] == [] and ours.outputs[name] == []
    assert node.settlement[name] == "unsettled"
    assert ours.settlement[name] == "rejected"


def test_delta_failing_secret_fetch(runs: dict[str, Run]) -> None:
    name = "secret service fails"
    node = published(runs["ferryman"], name)
    ours = without_exec_id(published(runs["ours"], name), runs["ours"], name)
    assert [p["routing_key"] for p in node] == [DATA_KEY, STATE_KEY]
    assert node[0]["body"]["data"]["tokenFingerprint"] is None  # it ran without credentials
    assert runs["ferryman"].settlement[name] == "acked"
    assert [p["routing_key"] for p in ours] == [ERROR_KEY, STATE_KEY]
    message = "Could not fetch secret sec-broken: secret service answered 500"
    assert ours[0]["body"]["error"]["message"] == message
    assert runs["ours"].settlement[name] == "rejected"
    assert {k for k in ours[1]["headers"]} == {k for k in node[1]["headers"]}


def test_delta_unknown_function(runs: dict[str, Run]) -> None:
    name = "unknown function"
    node = published(runs["ferryman"], name)
    ours = without_exec_id(published(runs["ours"], name), runs["ours"], name)
    assert [p["routing_key"] for p in node] == [ERROR_KEY]
    assert [p["routing_key"] for p in ours] == [ERROR_KEY, STATE_KEY]
    assert ours[0]["headers"].keys() == node[0]["headers"].keys()
    assert ours[0]["body"]["keys"] == node[0]["body"]["keys"] == ["error", "errorInput"]
    assert "noSuchFunction" in ours[0]["body"]["error"]["message"]
    assert "noSuchFunction" in node[0]["body"]["error"]["message"]
    assert runs["ferryman"].settlement[name] == runs["ours"].settlement[name] == "rejected"
