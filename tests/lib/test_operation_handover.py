"""Operation hands Intercom's decoded answers over to the sailor (no defensive copy), and only those."""

from __future__ import annotations

import pytest
from elasticio_sailor.message import Message

from tests.lib.conftest import US
from tests.lib.test_operation import CREATE, DELETE, EVENTS, SHOW, run

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("behaviour", ["emitPage", "emitIndividually", "fetchAll"])
def test_list_messages_are_handed_over(rsps, cfg, behaviour):
    rsps.get(f"{US}/events", json={"type": "event.list", "events": [{"id": "e1"}, {"id": "e2"}]})
    out = run(
        EVENTS,
        {"filter": {"user_id": "1"}, "type": "user"},
        {**cfg, "emitBehaviour": behaviour},
        metadata={"oihUid": "o"},
    )
    assert out and all(Message.from_any(m).data_handed_over for m in out)
    assert all(m["metadata"] == {"oihUid": "o"} for m in out if behaviour != "emitIndividually")


def test_json_answer_is_handed_over_but_built_bodies_are_not(rsps, cfg):
    rsps.get(f"{US}/contacts/9", json={"type": "contact", "id": "9"})
    rsps.post(f"{US}/contacts", json={"type": "contact", "id": "1"})
    rsps.delete(f"{US}/contacts/9", status=204)
    for operation, data in ((SHOW, {"id": "9"}), (CREATE, {"requestBody": {"role": "user"}})):
        [message] = run(operation, data, cfg)
        assert Message.from_any(message).data_handed_over and message["data"]["type"] == "contact"
    [empty] = run(DELETE, {"id": "9"}, cfg)  # our own body, holding a value from the incoming message
    assert empty["data"]["result"] == "no content" and not Message.from_any(empty).data_handed_over
