"""nodeSettings.applyTransform: JSONata over the whole message, before and/or after the component.

As the ferryman's transformer: `before`/`both` evaluate `transformFunction` over the incoming message
(`{data, metadata, attachments, passthrough}`) and the result becomes the message the component gets;
`after`/`both` evaluate `secondTransformFunction` (else `transformFunction`) over each emitted data message.
An expression that fails to compile or evaluate leaves the message unchanged (logged), as in the ferryman.
JSONata itself is `jsonata-python`, a maintained port of the reference implementation.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

import jsonata

log = logging.getLogger("elasticio_sailor.oih")
_lock = threading.Lock()


@lru_cache(maxsize=128)
def _compile(expression: str) -> jsonata.Jsonata:
    return jsonata.Jsonata(expression)


def _mode(node_settings: dict[str, Any] | None) -> str:
    value = (node_settings or {}).get("applyTransform")
    return value if isinstance(value, str) else ""


def wants_before(node_settings: dict[str, Any] | None) -> bool:
    return _mode(node_settings) in ("before", "both") and bool((node_settings or {}).get("transformFunction"))


def wants_after(node_settings: dict[str, Any] | None) -> bool:
    ns = node_settings or {}
    expression = ns.get("secondTransformFunction") or ns.get("transformFunction")
    return _mode(ns) in ("after", "both") and bool(expression)


def apply(expression: str, obj: Any) -> Any:
    """Evaluate `expression` over `obj`; on any JSONata error return `obj` unchanged."""
    try:
        with _lock:  # compiled expressions keep evaluation state; do not share one between threads
            compiled = _compile(expression)
            return compiled.evaluate(obj)
    except Exception as exc:  # jsonata raises JException and friends
        log.error("Could not apply custom mapping: %s", exc)
        return obj


def before(message: dict[str, Any], node_settings: dict[str, Any] | None) -> Any:
    """The `before` transform of the incoming message (identity when not configured)."""
    if not wants_before(node_settings):
        return message
    return apply(str((node_settings or {})["transformFunction"]), message)


def after(message: dict[str, Any], node_settings: dict[str, Any] | None) -> Any:
    """The `after` transform of one emitted data message (identity when not configured)."""
    if not wants_after(node_settings):
        return message
    ns = node_settings or {}
    return apply(str(ns.get("secondTransformFunction") or ns.get("transformFunction")), message)
