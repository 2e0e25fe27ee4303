"""A polling trigger in the AMQP worker (OIH dialect): real RabbitMQ, fake OIH services, fake Intercom.

The orchestrator's token carries the step fields; the snapshot comes from the snapshots service, and the
trigger's data and snapshots go to the back-channel and the events collector.
"""

from __future__ import annotations

import uuid

import pytest

from tests.oih.fake_oih import FakeOih
from tests.oih.harness import (
    DATA_KEY,
    Broker,
    Topology,
    make_token,
    start_worker,
    token_claims,
    wait_consuming,
)

from .conftest import BASE, ROOT

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def oih_broker():
    b = Broker(Topology())
    b.setup()
    try:
        yield b
    finally:
        b.teardown()


def test_contacts_trigger_in_the_oih_worker(oih_broker, fake, cfg, tmp_path):
    broker, topo = oih_broker, oih_broker.topo
    made = [fake.add_contact(email=f"o{i}@example.com", updated_at=BASE + 10 + i)["id"] for i in range(3)]
    with FakeOih() as oih:
        # the position of an earlier run: the first contact was already emitted
        earlier = {"updated_at": BASE + 10, "ids_at_last": [made[0]], "startTime": BASE}
        oih.state.snapshots[(topo.flow_id, topo.step_id)] = earlier
        worker = start_worker(topo.env(services_url=oih.url), tmp_path / "worker.log", component=ROOT)
        try:
            wait_consuming(broker, worker)
            claims = token_claims(
                topo.flow_id, topo.step_id, "newOrUpdatedContacts", fields={**cfg, "startTime": BASE}
            )
            message_id = str(uuid.uuid4())
            broker.send(
                {"data": {}, "metadata": {}}, token=make_token(**claims), headers={"messageId": message_id}
            )
            out = broker.wait_done(message_id)
            data = [c.json for c in out if c.routing_key == DATA_KEY]
            assert [m["data"]["id"] for m in data] == made[1:]
            assert [m["metadata"]["recordUid"] for m in data] == made[1:]
            snaps = [c.json for c in out if c.exchange == topo.collector and c.headers.get("snapshotEvent")]
            assert snaps[-1] == {"updated_at": BASE + 12, "ids_at_last": [made[2]], "startTime": BASE}
            assert fake.token not in worker.log()
        finally:
            worker.stop()
