"""Webhook trigger: X-Hub-Signature checks (good, bad, missing, malformed), topic filter, ping, raw body."""

from __future__ import annotations

import json

import pytest

from lib.triggers import webhook
from lib.triggers.webhook import WebhookSignatureError, signature, topic_matches
from tests.in_process import run

pytestmark = pytest.mark.timeout(30)

SECRET = "app-client-secret-3f9a"


def notification(topic: str = "contact.user.created", **item) -> dict:
    item = {
        "type": "contact",
        "id": "6657a9926abd01639c000001",
        "email": "a&b <x>@example.com",
        "name": "Zoë",
        **item,
    }
    return {
        "type": "notification_event",
        "app_id": "abc123",
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": "notif_0f3e",
        "topic": topic,
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": 1717000000,
        "created_at": 1717000000,
        "self": None,
    }


def rails_body(note: dict) -> bytes:
    """The body as Intercom (Rails) writes it: compact, UTF-8, <, > and & escaped."""
    text = json.dumps(note, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return text.encode("utf-8")


def delivered(note: dict, sig: str | None, header: str = "X-Hub-Signature") -> dict:
    """The message a webhook gateway passes on: parsed body in data, HTTP headers in headers."""
    return {"data": json.loads(rails_body(note)), "headers": {header: sig} if sig else {}}


CFG = {"clientSecret": SECRET}


def test_good_signature_emits_the_item_with_metadata():
    note = notification()
    result = run(webhook, CFG, msg=delivered(note, signature(rails_body(note), SECRET)))
    assert len(result.data) == 1
    message = result.data[0]
    assert message["data"] == note["data"]["item"]
    assert message["metadata"] == {
        "topic": "contact.user.created",
        "notificationId": "notif_0f3e",
        "appId": "abc123",
        "createdAt": 1717000000,
        "recordUid": "6657a9926abd01639c000001",
    }


def test_header_name_is_case_insensitive_and_plain_compact_json_also_verifies():
    note = notification(email="plain@example.com")
    body = json.dumps(note, separators=(",", ":")).encode()
    result = run(webhook, CFG, msg=delivered(note, signature(body, SECRET), header="x-hub-signature"))
    assert result.data[0]["data"]["email"] == "plain@example.com"


def test_bad_signature_is_rejected_without_leaking_the_secret():
    note = notification()
    forged = signature(rails_body(note), "another-secret")
    with pytest.raises(WebhookSignatureError) as err:
        run(webhook, CFG, msg=delivered(note, forged))
    text = str(err.value) + json.dumps(err.value.to_dict())
    assert "does not match" in text and err.value.to_dict() == {"status": 401, "code": "signature_invalid"}
    assert SECRET not in text and signature(rails_body(note), SECRET)[5:] not in text


def test_tampered_body_is_rejected():
    note = notification()
    sig = signature(rails_body(note), SECRET)
    tampered = delivered(note, sig)
    tampered["data"]["data"]["item"]["email"] = "evil@example.com"
    with pytest.raises(WebhookSignatureError, match="does not match"):
        run(webhook, CFG, msg=tampered)


@pytest.mark.parametrize(
    ("sig", "code"),
    [
        (None, "signature_missing"),
        ("md5=abc", "signature_malformed"),
        ("sha1=" + "g" * 40, "signature_malformed"),
    ],
)
def test_missing_or_malformed_signature_is_rejected(sig, code):
    with pytest.raises(WebhookSignatureError) as err:
        run(webhook, CFG, msg=delivered(notification(), sig))
    assert err.value.code == code


def test_without_client_secret_notifications_are_refused_unless_explicitly_allowed():
    msg = delivered(notification(), None)
    with pytest.raises(ValueError, match="clientSecret"):
        run(webhook, {}, msg=msg)
    assert len(run(webhook, {"skipSignatureCheck": True}, msg=msg).data) == 1


def test_raw_body_is_checked_exactly_and_parsed():
    note = notification()
    raw = json.dumps(note, indent=1)  # a layout no re-serialisation would reproduce
    sig = signature(raw.encode(), SECRET)
    result = run(webhook, CFG, msg={"data": {"rawBody": raw}, "headers": {"X-Hub-Signature": sig}})
    assert result.data[0]["data"]["id"] == note["data"]["item"]["id"]
    with pytest.raises(WebhookSignatureError):
        run(webhook, CFG, msg={"data": {"rawBody": raw + " "}, "headers": {"X-Hub-Signature": sig}})


def signed(topic: str) -> dict:
    note = notification(topic)
    return delivered(note, signature(rails_body(note), SECRET))


def test_topic_filter_with_wildcards():
    step = {**CFG, "topics": "conversation.admin.*, contact.user.created"}
    assert len(run(webhook, step, msg=signed("contact.user.created")).data) == 1
    assert len(run(webhook, step, msg=signed("conversation.admin.closed")).data) == 1
    assert run(webhook, step, msg=signed("contact.lead.created")).data == []
    assert run(webhook, {**CFG, "topics": ["company.*"]}, msg=signed("company.updated")).data


def test_ping_is_acknowledged_silently_unless_selected():
    note = {
        "type": "notification_event",
        "topic": "ping",
        "id": "notif_ping",
        "app_id": "abc123",
        "data": {"type": "notification_event_data", "item": {"type": "ping", "message": "hi"}},
    }
    msg = delivered(note, signature(rails_body(note), SECRET))
    assert run(webhook, CFG, msg=msg).data == []
    assert run(webhook, {**CFG, "topics": "ping"}, msg=msg).data[0]["data"]["type"] == "ping"


def test_emit_whole_notification_and_reject_non_notifications():
    note = notification()
    msg = delivered(note, signature(rails_body(note), SECRET))
    assert run(webhook, {**CFG, "emit": "notification"}, msg=msg).data[0]["data"]["topic"] == note["topic"]
    other = {"hello": "world"}
    with pytest.raises(ValueError, match="notification_event"):
        run(webhook, CFG, msg=delivered(other, signature(rails_body(other), SECRET)))


def test_topic_matches():
    assert topic_matches("contact.user.created", []) and not topic_matches("ping", [])
    assert topic_matches("ping", ["ping"]) and not topic_matches("ping", ["*"])
    assert not topic_matches("contact.user.created", ["contact.lead.*"])
