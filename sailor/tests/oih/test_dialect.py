"""OihDialect in-process (no broker): configuration, prepare(), and every publication kind, driven the way
the worker drives it (prepare -> run_process with emit -> publications / on_end)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from elasticio_sailor.component import Component
from elasticio_sailor.dialects import select_dialect
from elasticio_sailor.dialects.base import Delivery, Execution, Publication, RejectMessage
from elasticio_sailor.dialects.oih.dialect import OihDialect
from elasticio_sailor.env import SettingsError, dialect_name
from elasticio_sailor.message import Message
from elasticio_sailor.runner import run_process
from elasticio_sailor.testing.fake_oih import FakeOih
from elasticio_sailor.testing.oih import make_token, token_claims

from .harness import TWIN_DIR

pytestmark = pytest.mark.timeout(60)

BASE_ENV = {
    "ELASTICIO_AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "ELASTICIO_LISTEN_MESSAGES_ON": "flow-f1:s1:messages",
    "ELASTICIO_BACKCHANNEL_EXCHANGE": "orchestrator_backchannel",
    "ELASTICIO_NODE_EXCHANGE": "flow-f1",
    "ELASTICIO_OUTPUT_ROUTING_KEY": "orchestrator_backchannel.input",
    "ELASTICIO_REBOUND_ROUTING_KEY": "flow-f1.s1.rebound",
    "ELASTICIO_COMP_ID": "comp-1",
    "ELASTICIO_RATE_INTERVAL": "1",
}


def dialect(services_url: str | None = None, **env: str) -> OihDialect:
    full = {**BASE_ENV, **{f"ELASTICIO_{k}": v for k, v in env.items()}}
    if services_url:
        full["ELASTICIO_SECRET_SERVICE_BASE_URL"] = services_url
        full["ELASTICIO_SNAPSHOTS_SERVICE_BASE_URL"] = services_url
        full["ELASTICIO_DATAHUB_BASE_URL"] = services_url
    d = OihDialect(full)
    d.start(Component(TWIN_DIR))
    return d


MAKE = "make"


def delivery(
    body: Any,
    function: str = "echoTwist",
    *,
    headers: dict | None = None,
    token: str | None = MAKE,
    **claims: Any,
) -> Delivery:
    hdrs = dict(headers or {})
    if token == MAKE:
        hdrs["orchestratorToken"] = make_token(**token_claims("f1", "s1", function, **claims))
    elif token is not None:
        hdrs["orchestratorToken"] = token
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(
        body=raw,
        headers=hdrs,
        properties={"content_type": "text/json"},
        exchange="flow-f1",
        routing_key="flow-f1.s1.input",
        delivery_tag=1,
    )


def drive(d: OihDialect, dl: Delivery) -> tuple[Execution, list[Publication]]:
    """What the worker does with one delivery, minus the broker."""
    execution = d.prepare(dl)
    pubs: list[Publication] = []

    def emit(kind: str, payload: Any) -> None:
        pubs.extend(d.on_end(execution) if kind == "end" else d.publications(execution, kind, payload))

    if execution.error is not None:
        emit("error", execution.error)
        emit("end", None)
    else:
        run_process(
            Component(TWIN_DIR),
            execution.function,
            execution.message,
            execution.cfg,
            execution.snapshot,
            emit,
        )
    return execution, pubs


def test_detection_and_required_variables() -> None:
    assert dialect_name({"ELASTICIO_NODE_EXCHANGE": "x"}) == "oih"
    assert dialect_name({"ELASTICIO_PUBLISH_MESSAGES_TO": "x"}) == "elasticio"
    assert isinstance(select_dialect(BASE_ENV), OihDialect)
    for name in ("LISTEN_MESSAGES_ON", "REBOUND_ROUTING_KEY"):
        env = {k: v for k, v in BASE_ENV.items() if k != f"ELASTICIO_{name}"}
        with pytest.raises(SettingsError, match=f"ELASTICIO_{name} is missing"):
            OihDialect(env)


def test_defaults_match_oih_not_the_ferrymans_unbound_error_key() -> None:
    s = dialect().s
    assert (s.error_routing_key, s.state_routing_key, s.snapshots_exchange) == (
        "orchestrator_backchannel.error",
        "orchestrator_backchannel.step_state",
        "component-events-collector",
    )
    assert s.secret_service_url is None and s.datahub_url is None  # unset: skipped, no cluster defaults
    assert dialect().amqp.prefetch == 1 and dialect(RABBITMQ_PREFETCH_SAILOR="4").amqp.prefetch == 4


@pytest.mark.parametrize(
    ("dl", "reason"),
    [
        (delivery({"data": {}}, token=None), "no orchestratorToken header"),
        (delivery({"data": {}}, token="x.y"), "not a decodable JWT"),
        (
            delivery(
                b"",
            ),
            "empty body",
        ),
        (delivery(b"{not json"), "cannot decode"),
        (delivery([1, 2]), "not an object"),
    ],
)
def test_unusable_deliveries_are_rejected(dl: Delivery, reason: str) -> None:
    with pytest.raises(RejectMessage, match=reason):
        dialect().prepare(dl)


def test_cfg_is_fields_plus_node_settings_plus_secret() -> None:
    with FakeOih() as oih:
        oih.add_mixed_secret("m1", {"access_token": "tok-from-mixed", "server": "custom"})
        ex = dialect(oih.url).prepare(
            delivery(
                {"data": {}},
                secretId="m1",
                fields={"mode": "x", "server": "us"},
                nodeSettings={"passthrough": True},
            )
        )
    assert ex.cfg == {
        "mode": "x",
        "server": "custom",
        "nodeSettings": {"passthrough": True},
        "access_token": "tok-from-mixed",
        "accessToken": "tok-from-mixed",
    }
    assert "tok-from-mixed" in ex.secrets and ex.function == "echoTwist" and ex.error is None


def test_secret_is_skipped_without_api_key_or_url() -> None:
    with FakeOih() as oih:
        oih.add_oauth_secret("s", "t-1")
        ex = dialect(oih.url).prepare(delivery({"data": {}}, secretId="s", apiKey=None))
        assert "accessToken" not in ex.cfg and oih.requests_to("/secrets") == []
    ex = dialect().prepare(delivery({"data": {}}, secretId="s"))
    assert "accessToken" not in ex.cfg and ex.error is None


def test_failing_secret_becomes_an_error_publication_without_secrets() -> None:
    with FakeOih() as oih:
        oih.state.secret_status["bad"] = 503
        d = dialect(oih.url)
        ex, pubs = drive(d, delivery({"data": {"x": 1}}, secretId="bad", apiKey="iam-secret-key-123"))
    assert ex.failed and [p.routing_key for p in pubs] == [
        "orchestrator_backchannel.error",
        "orchestrator_backchannel.step_state",
    ]
    error = json.loads(json.loads(pubs[0].body)["error"])
    assert error["message"] == "Could not fetch secret bad: secret service answered 503"
    assert b"iam-secret-key-123" not in pubs[0].body


def test_no_cfg_or_secret_is_attached_to_anything_published() -> None:
    with FakeOih() as oih:
        oih.add_oauth_secret("s", "super-secret-oauth-token")
        d = dialect(oih.url)
        for function in ("echoTwist", "fail", "countSnapshot", "reboundOnce", "emitTwo"):
            ns = {"autoSaveSnapshots": True}
            _, pubs = drive(d, delivery({"data": {}}, function, secretId="s", nodeSettings=ns))
            for p in pubs:
                assert b"super-secret-oauth-token" not in p.body and b"passedCfg" not in p.body
                assert "super-secret-oauth-token" not in json.dumps(p.headers)


def test_data_routing_key_override_and_header_filtering() -> None:
    d = dialect()
    ex = d.prepare(delivery({"data": {}}))
    (pub,) = d.publications(
        ex, "data", Message(data={"a": 1}, headers={"X-EIO-Routing-Key": "custom.key", "keep": "me"})
    )
    assert pub.routing_key == "custom.key" and json.loads(pub.body)["headers"] == {"keep": "me"}
    (pub,) = d.publications(ex, "data", Message(data={"a": 1}, id="fixed-id"))
    assert pub.routing_key == "orchestrator_backchannel.input" and pub.headers["messageId"] == "fixed-id"
    assert json.loads(pub.body)["id"] == "fixed-id"


def test_outgoing_size_limit_is_an_error() -> None:
    d = dialect(OUTGOING_MESSAGE_SIZE_LIMIT="50")
    ex = d.prepare(delivery({"data": {}}))
    (pub,) = d.publications(ex, "data", Message(data={"big": "x" * 100}))
    assert pub.routing_key == "orchestrator_backchannel.error" and ex.failed
    assert "exceeds limit of 50" in json.loads(json.loads(pub.body)["error"])["message"]


def test_additional_vars_and_exec_id_headers() -> None:
    d = OihDialect(
        {
            **BASE_ENV,
            "ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS": "ELASTICIO_TENANT_ID, REGION",
            "ELASTICIO_TENANT_ID": "t-9",
            "REGION": "eu",
            "ELASTICIO_EXEC_ID": "env-exec",
        }
    )
    ex = d.prepare(delivery({"data": {}}, headers={"execId": "orchestrator-exec"}))
    (state,) = d.on_end(ex)
    assert state.headers["tenantId"] == "t-9" and state.headers["region"] == "eu"
    assert state.headers["execId"] == "env-exec"
    ex = dialect().prepare(delivery({"data": {}}, headers={"execId": "oe"}))
    assert ex.state["outgoing"]["execId"] == "oe"


def test_rebound_limit_turns_into_an_uncounted_error() -> None:
    d = dialect(REBOUND_LIMIT="3")
    ex = d.prepare(delivery({"data": {}}, "reboundOnce", headers={"reboundIteration": 3}))
    (pub,) = d.publications(ex, "rebound", "later")
    assert pub.routing_key == "orchestrator_backchannel.error" and not ex.failed
    assert json.loads(json.loads(pub.body)["error"])["message"] == "Rebound limit exceeded"
    # a string iteration resets to 1, as in the ferryman
    ex = d.prepare(delivery({"data": {}}, "reboundOnce", headers={"reboundIteration": "2"}))
    (pub,) = d.publications(ex, "rebound", "later")
    assert pub.properties["expiration"] == "15000" and pub.headers["reboundIteration"] == 1


def test_snapshots_and_update_snapshots() -> None:
    d = dialect()
    ex = d.prepare(delivery({"data": {}}, flowExecId="fe-1", snapshotRoutingKey="from.token"))
    (snap,) = d.publications(ex, "snapshot", {"a": 1})
    assert snap.exchange == "component-events-collector" and snap.routing_key == "from.token"
    assert snap.headers["snapshotEvent"] == "snapshot" and "flowExecId" not in snap.headers
    (upd,) = d.publications(ex, "updateSnapshot", {"b": 2})
    assert upd.headers["snapshotEvent"] == "updateSnapshot" and upd.headers["flowExecId"] == "fe-1"
    assert d.publications(ex, "updateSnapshot", {"$set": {"x": 1}}) == []
    env_key = dialect(SNAPSHOT_ROUTING_KEY="env.key")
    (snap,) = env_key.publications(env_key.prepare(delivery({"data": {}})), "snapshot", {})
    assert snap.routing_key == "env.key"
    (snap,) = d.publications(d.prepare(delivery({"data": {}})), "snapshot", {})
    assert snap.routing_key == "flow-f1.s1.snapshot"


def test_auto_save_snapshots_sends_each_data_as_update_snapshot() -> None:
    d = dialect()
    ex = d.prepare(delivery({"data": {}}, nodeSettings={"autoSaveSnapshots": True}))
    upd, data = d.publications(ex, "data", Message(data={"n": 1}))
    assert upd.headers["snapshotEvent"] == "updateSnapshot" and json.loads(upd.body)["data"] == {"n": 1}
    assert data.routing_key == "orchestrator_backchannel.input"


def test_http_reply_needs_reply_to_and_never_carries_cfg() -> None:
    d = dialect()
    ex = d.prepare(delivery({"data": {}}, headers={"reply_to": "reply.q"}))
    assert ex.message.headers["reply_to"] == "reply.q"
    reply = {"statusCode": 200, "body": "ok", "headers": {}, "passedCfg": {}}
    (pub,) = d.publications(ex, "httpReply", reply)
    assert pub.routing_key == "reply.q" and json.loads(pub.body) == {
        "statusCode": 200,
        "body": "ok",
        "headers": {},
    }
    ex = d.prepare(delivery({"data": {}}))
    (pub,) = d.publications(ex, "httpReply", {"statusCode": 200})
    assert pub.routing_key == "orchestrator_backchannel.error" and ex.failed
    assert d.publications(ex, "updateKeys", {"k": 1}) == []


def test_errors_carry_the_exceptions_details_but_not_secrets() -> None:
    class ApiError(Exception):
        def to_dict(self) -> dict:
            return {"status": 401, "token": "leaky-token-value"}

    d = dialect()
    ex = d.prepare(delivery({"data": {}}))
    ex.secrets.append("leaky-token-value")
    (pub,) = d.publications(ex, "error", ApiError("denied with leaky-token-value"))
    error = json.loads(json.loads(pub.body)["error"])
    assert error["status"] == 401 and "leaky-token-value" not in pub.body.decode()


def test_encrypted_messages_when_a_password_is_set() -> None:
    from elasticio_sailor.crypto import MessageCipher

    cipher = MessageCipher("pw", "iv=any16_symbols")
    d = dialect(MESSAGE_CRYPTO_PASSWORD="pw", MESSAGE_CRYPTO_IV="iv=any16_symbols")
    ex = d.prepare(delivery(cipher.encrypt({"data": {"secret": 1}}, 1)))
    assert ex.message.data == {"secret": 1}
    (pub,) = d.publications(ex, "data", Message(data={"a": 1}))
    assert cipher.decrypt(pub.body, 1)["data"] == {"a": 1}
