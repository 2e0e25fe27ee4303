"""A polling trigger in the AMQP worker (OIH dialect): real RabbitMQ, fake OIH services, fake Intercom.

The orchestrator's token carries the step fields; the snapshot comes from the snapshots service, and the
trigger's data and snapshots go to the back-channel and the events collector.
"""

from __future__ import annotations

import uuid

import pytest
from elasticio_sailor.testing.fake_oih import FakeOih
from elasticio_sailor.testing.oih import DATA_KEY, OihTopology, make_token, orchestrator_message, token_claims
from elasticio_sailor.testing.process import start_sailor

from .conftest import BASE, ROOT

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def topology() -> OihTopology:
    return OihTopology()


def test_contacts_trigger_in_the_oih_worker(broker, fake, cfg, tmp_path):
    topo = broker.topo
    made = [fake.add_contact(email=f"o{i}@example.com", updated_at=BASE + 10 + i)["id"] for i in range(3)]
    with FakeOih() as oih:
        # the position of an earlier run: the first contact was already emitted
        earlier = {"updated_at": BASE + 10, "ids_at_last": [made[0]], "startTime": BASE}
        oih.state.snapshots[(topo.flow_id, topo.step_id)] = earlier
        worker = start_sailor(topo.env(services_url=oih.url), ROOT, tmp_path / "worker.log")
        try:
            broker.wait_consuming(worker)
            claims = token_claims(
                topo.flow_id, topo.step_id, "newOrUpdatedContacts", fields={**cfg, "startTime": BASE}
            )
            message_id = str(uuid.uuid4())
            broker.publish(
                *orchestrator_message(
                    broker.topo,
                    {"data": {}, "metadata": {}},
                    token=make_token(**claims),
                    headers={"messageId": message_id},
                )
            )
            out = broker.wait_done(message_id)
            data = [c.json for c in out if c.routing_key == DATA_KEY]
            assert [m["data"]["id"] for m in data] == made[1:]
            assert [m["metadata"]["recordUid"] for m in data] == made[1:]
            snaps = [c.json for c in out if c.exchange == topo.collector and c.headers.get("snapshotEvent")]
            assert snaps[-1] == {"updated_at": BASE + 12, "ids_at_last": [made[2]], "startTime": BASE}
            assert fake.token not in worker.logs()
        finally:
            worker.stop()
