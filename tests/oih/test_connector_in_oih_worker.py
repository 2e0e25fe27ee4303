"""The connector itself in our worker (OIH dialect) on the real RabbitMQ, with the fake secret service and
the fake Intercom over HTTP: a real Intercom action with the OIH secret, and a rotated secret end to end.

The worker caches the secret; when Intercom refuses the
cached token (401), the worker fetches the secret again and that one call is retried: the message succeeds,
nothing is lost or duplicated, and the old and new tokens never reach a log."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from elasticio_sailor.testing.amqp import Broker
from elasticio_sailor.testing.fake_oih import FakeOih
from elasticio_sailor.testing.oih import (
    DATA_KEY,
    ERROR_KEY,
    OihTopology,
    make_token,
    orchestrator_message,
    token_claims,
)
from elasticio_sailor.testing.process import start_sailor

from tools.fake_intercom import FakeIntercom

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)
OLD, NEW = "ic-token-old-0123456789", "ic-token-new-9876543210"


def show_contact(broker: Broker, intercom: FakeIntercom, contact_id: str) -> str:
    mid = str(uuid.uuid4())
    claims = token_claims(
        broker.topo.flow_id,
        broker.topo.step_id,
        "ShowContact",
        secretId="ic-secret",
        fields={"server": "custom", "otherServer": intercom.url},
    )
    body = {"data": {"id": contact_id}, "metadata": {}}
    broker.publish(
        *orchestrator_message(broker.topo, body, token=make_token(**claims), headers={"messageId": mid})
    )
    return mid


def test_a_real_intercom_action_with_the_oih_secret(rabbitmq: str, tmp_path: Path) -> None:
    """The connector itself (repo root) in the OIH dialect against the fake Intercom."""
    with FakeIntercom(token="ic-oauth-token-42") as intercom, FakeOih() as services:
        services.add_oauth_secret("ic-secret", "ic-oauth-token-42")
        broker = Broker(OihTopology())
        env = broker.topo.env(services_url=services.url)
        worker = start_sailor(env, ROOT, tmp_path / "worker.log")
        try:
            broker.wait_consuming(worker)
            mid = str(uuid.uuid4())
            claims = token_claims(
                broker.topo.flow_id,
                broker.topo.step_id,
                "listAdmins",
                secretId="ic-secret",
                fields={"server": "custom", "otherServer": intercom.url},
            )
            broker.publish(
                *orchestrator_message(
                    broker.topo, {"data": {}}, token=make_token(**claims), headers={"messageId": mid}
                )
            )
            outputs = broker.wait_done(mid, timeout=30)
            (data,) = [c for c in outputs if c.routing_key == DATA_KEY]
            assert data.json["data"]["type"] == "admin.list" and data.json["data"]["admins"]
            (req,) = [r for r in intercom.requests if r.path == "/admins"]
            assert req.header("Authorization") == "Bearer ic-oauth-token-42"
            assert broker.settlement(mid) == "acked"
            assert "ic-oauth-token-42" not in worker.logs()
        finally:
            worker.stop()
            broker.close()


def test_a_401_on_a_cached_secret_fetches_it_again_and_the_message_succeeds(
    rabbitmq: str, tmp_path: Path
) -> None:
    with FakeIntercom(token=OLD, seed=False) as intercom, FakeOih() as services:
        contact = intercom.add_contact(email="rotate@example.com")
        services.add_oauth_secret("ic-secret", OLD)
        broker = Broker(OihTopology())
        worker = start_sailor(broker.topo.env(services_url=services.url), ROOT, tmp_path / "worker.log")
        try:
            broker.wait_consuming(worker)
            outputs = {}
            for step in ("first", "second"):  # the second one comes from the cache
                mid = show_contact(broker, intercom, contact["id"])
                outputs[step] = (mid, broker.wait_done(mid, timeout=30))
            assert len(services.requests_to("/secrets/ic-secret")) == 1

            services.add_oauth_secret("ic-secret", NEW)  # rotated; Intercom now refuses the old token
            intercom.token = NEW
            for step in ("rotated", "after"):
                mid = show_contact(broker, intercom, contact["id"])
                outputs[step] = (mid, broker.wait_done(mid, timeout=30))

            for step, (mid, published) in outputs.items():
                data = [c for c in published if c.routing_key == DATA_KEY]
                errors = [c for c in published if c.routing_key == ERROR_KEY]
                assert len(data) == 1 and not errors, (step, [c.routing_key for c in published])
                assert data[0].json["data"]["id"] == contact["id"]
                assert broker.settlement(mid) == "acked", step
            # once at first, once after the 401; the message after it uses the cache again
            assert len(services.requests_to("/secrets/ic-secret")) == 2
            auth = [r.header("Authorization") for r in intercom.requests]
            assert auth == [f"Bearer {OLD}"] * 3 + [f"Bearer {NEW}"] * 2
            assert services.requests_to("/snapshots") == []  # an action: no snapshot fetch
            log = worker.logs()
            assert OLD not in log and NEW not in log
        finally:
            code = worker.stop()
            broker.close()
        assert code == 0
