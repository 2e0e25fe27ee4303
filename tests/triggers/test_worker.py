"""A polling trigger in the AMQP worker (elastic.io dialect): real RabbitMQ, fake platform API, fake Intercom.

The worker runs this repository's component.json (as generated from tools/component_base.json). Two ticks:
the first emits the seeded contacts and the snapshot; the worker keeps that snapshot, so the second tick
emits only the contact changed in between.
"""

from __future__ import annotations

import json

import pytest
from elasticio_sailor.testing.elasticio import FakePlatform, decode, input_message, worker_env
from elasticio_sailor.testing.process import WorkerProcess

from .conftest import BASE, ROOT

pytestmark = pytest.mark.timeout(120)


def test_contacts_trigger_in_the_elasticio_worker(broker, fake, cfg):
    if "newOrUpdatedContacts" not in json.loads((ROOT / "component.json").read_text())["triggers"]:
        pytest.fail("component.json lacks the triggers: run `python -m tools.generate`")
    made = [fake.add_contact(email=f"w{i}@example.com", updated_at=BASE + i)["id"] for i in range(3)]
    data_q, snap_q = broker.queue("data", "data"), broker.queue("snapshot", "snapshot")
    step = {
        "config": {**cfg, "startTime": BASE, "pageSize": 2},
        "snapshot": {},
        "is_passthrough": False,
        "variables": {},
    }
    with FakePlatform(step) as platform:
        worker = WorkerProcess(worker_env(broker, platform, "newOrUpdatedContacts"), cwd=ROOT)
        try:
            worker.wait_ready()
            broker.publish(*input_message({}))  # the scheduler's tick
            got = [decode(p, b)["body"] for _, p, b in broker.get_all(data_q, 3)]
            assert [m["id"] for m in got] == made
            snaps = [json.loads(b) for _, _, b in broker.get_all(snap_q, 2)]  # after page 1 and page 2
            assert snaps[-1] == {"updated_at": BASE + 2, "ids_at_last": [made[2]], "startTime": BASE}

            fake.db["contacts"][made[0]]["updated_at"] = BASE + 50
            broker.publish(*input_message({}))
            _, props, body = broker.get(data_q)
            assert decode(props, body)["body"]["id"] == made[0]
            assert json.loads(broker.get(snap_q)[2])["updated_at"] == BASE + 50
            assert broker.count(data_q) == 0
            assert fake.token not in worker.logs()
        finally:
            worker.terminate()
            worker.kill()
