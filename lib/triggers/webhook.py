"""Trigger: Intercom webhook notifications, signature-checked and filtered by topic; emits the item.

Intercom POSTs ``{"type": "notification_event", "topic": "contact.user.created", "app_id": ...,
"id": "notif_...", "created_at": ..., "data": {"type": "notification_event_data", "item": {...}}}`` and signs
the *raw body* with HMAC-SHA1 under the app's client secret: header ``X-Hub-Signature: sha1=<40 hex>``.

The raw body: elastic.io and OIH webhook gateways parse the JSON body and pass it on as ``msg.data``; the
bytes Intercom signed are gone. So the signature is checked against, in this order:

1. ``msg.data["rawBody"]`` (a string) when the receiver kept the raw text there: exact, and the notification
   is then parsed from it (the signed text is the one trusted);
2. otherwise re-serialisations of ``msg.data``: compact JSON as Intercom (Rails) writes it, i.e. key order
   kept, no spaces, UTF-8 unescaped, with and without Rails' escaping of ``<``, ``>``, ``&``, U+2028 and
   U+2029. This matches what Intercom sends but can fail for bodies whose numbers were reformatted
   (``1.0e-05`` vs ``1e-05``) or keys reordered by a gateway; configure the gateway to pass ``rawBody`` then.

The HTTP headers are read from ``msg.headers`` (case-insensitive), else from ``msg.metadata["headers"]``.
A missing or wrong signature raises ``WebhookSignatureError`` (status 401): the message is rejected and
nothing is emitted. Errors never contain the secret or the expected digest.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
from typing import Any

from lib import step_fields
from lib.intercom.errors import ConfigurationError

__all__ = ["WebhookSignatureError", "process", "signature", "topic_matches", "verify"]

SIGNATURE_HEADER = "x-hub-signature"
_SIGNATURE = re.compile(r"^sha1=([0-9a-fA-F]{40})$")
_RAILS_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class WebhookSignatureError(Exception):
    """The notification's X-Hub-Signature is missing or does not match: it may not come from Intercom."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"status": 401, "code": self.code}


def signature(body: bytes, secret: str) -> str:
    """The header value Intercom sends for ``body``: ``sha1=<hex HMAC-SHA1>``."""
    return "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def _candidates(data: Any) -> list[bytes]:
    compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    ascii_ = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    out: list[bytes] = []
    for text in (compact, _rails(compact), ascii_, _rails(ascii_)):
        raw = text.encode("utf-8")
        if raw not in out:
            out.append(raw)
    return out


def _rails(text: str) -> str:
    return "".join(_RAILS_ESCAPES.get(ch, ch) for ch in text)


def _header(msg: Any, name: str) -> str | None:
    for headers in (getattr(msg, "headers", None), (getattr(msg, "metadata", None) or {}).get("headers")):
        if isinstance(headers, dict):
            for key, value in headers.items():
                if str(key).lower() == name:
                    return value[0] if isinstance(value, list) and value else value
    return None


def verify(bodies: list[bytes], header: str | None, secret: str) -> None:
    """Raise WebhookSignatureError unless ``header`` is the signature of one of ``bodies`` (constant time)."""
    if not header:
        raise WebhookSignatureError(
            "Missing X-Hub-Signature header: the notification is not signed", "signature_missing"
        )
    match = _SIGNATURE.match(str(header).strip())
    if not match:
        raise WebhookSignatureError(
            "Malformed X-Hub-Signature header (expected sha1=<40 hex digits>)", "signature_malformed"
        )
    given = ("sha1=" + match.group(1).lower()).encode("ascii")
    ok = False
    for body in bodies:  # every candidate is compared, so timing does not reveal which one matched
        ok |= hmac.compare_digest(signature(body, secret).encode("ascii"), given)
    if not ok:
        raise WebhookSignatureError(
            "X-Hub-Signature does not match the request body: wrong client secret, or not sent by Intercom",
            "signature_invalid",
        )


def _topics(cfg: dict) -> list[str]:
    value = cfg.get("topics") or []
    if isinstance(value, str):
        value = re.split(r"[\s,]+", value)
    return [str(t).strip() for t in value if str(t).strip()]


def topic_matches(topic: str, patterns: list[str]) -> bool:
    """Empty patterns: every topic except ``ping``. Patterns may use ``*`` (``conversation.admin.*``)."""
    if not patterns:
        return topic != "ping"
    if topic == "ping":
        return "ping" in patterns
    return any(fnmatch.fnmatchcase(topic, p) for p in patterns)


def process(self, msg, cfg, snapshot=None):
    """Check the signature, filter by topic, emit the notification's item (or the whole notification)."""
    data = msg.data if isinstance(msg.data, dict) else {}
    raw = data.get("rawBody")
    if isinstance(raw, str):
        bodies = [raw.encode("utf-8")]
        try:
            notification = json.loads(raw)
        except ValueError:
            raise ValueError("rawBody is not JSON: not an Intercom notification") from None
    else:
        notification = data
        bodies = _candidates(data)

    secret = cfg.get("clientSecret")
    if secret:
        verify(bodies, _header(msg, SIGNATURE_HEADER), str(secret))
    elif not step_fields.flag(cfg, "skipSignatureCheck"):
        raise ConfigurationError(
            "The credential field clientSecret is empty: set the app's client secret (Developer "
            "Hub > Basic information) to verify X-Hub-Signature, or tick skipSignatureCheck",
            field="clientSecret",
        )

    if not isinstance(notification, dict) or notification.get("type") != "notification_event":
        raise ValueError("Not an Intercom notification: expected type 'notification_event'")
    topic = str(notification.get("topic") or "")
    if not topic_matches(topic, _topics(cfg)):
        self.logger.info("Webhook notification with topic %r skipped (not selected)", topic)
        return None
    item = (notification.get("data") or {}).get("item")
    metadata: dict[str, Any] = {"topic": topic}
    for key, name in (("id", "notificationId"), ("app_id", "appId"), ("created_at", "createdAt")):
        if notification.get(key) is not None:
            metadata[name] = notification[key]
    if isinstance(item, dict) and item.get("id") is not None:
        metadata["recordUid"] = str(item["id"])
    if cfg.get("applicationUid"):
        metadata["applicationUid"] = cfg["applicationUid"]
    emitted = notification if cfg.get("emit") == "notification" or not isinstance(item, dict) else item
    return {"data": emitted, "metadata": metadata}
