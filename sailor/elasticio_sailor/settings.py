"""Worker configuration from the environment, read exactly as the Node sailor reads it.

Why exact: the platform starts our container with the same environment it gives the Node sailor,
so names, defaults and parsing quirks must match (sailor-nodejs lib/settings.js):
- every name carries the prefix ``ELASTICIO_``;
- a number is ``parseInt(value) || default``: ``0``, ``NaN`` and junk fall back to the default,
  leading digits are taken (``"12ms"`` -> 12), ``0x`` is hex;
- a boolean is false for ``''`` and ``'false'``, true for anything else, default when unset;
- a string is ``value || default``;
- a missing or empty required variable stops start-up with ``<NAME> is missing``. A non-empty
  ``HOOK_SHUTDOWN`` (even ``'false'``) drops the AMQP and crypto requirements.

Dialect choice (not in either Node runtime, which each speak one dialect): OIH when any of
``ELASTICIO_BACKCHANNEL_EXCHANGE``, ``ELASTICIO_NODE_EXCHANGE``, ``ELASTICIO_OUTPUT_ROUTING_KEY``
is set (mandatory in the ferryman, unknown to the elastic.io sailor), else elastic.io;
``ELASTICIO_SAILOR_DIALECT=elasticio|oih`` overrides. The OIH dialect lives in
``elasticio_sailor.oih`` and exposes ``create_dialect(env) -> Dialect``.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Mapping
from typing import Any

PREFIX = "ELASTICIO_"

# Name -> default, in the Node sailor's order. The default's type decides the parsing.
OPTIONAL: dict[str, Any] = {
    "REBOUND_INITIAL_EXPIRATION": 15000,
    "REBOUND_LIMIT": 20,
    "COMPONENT_PATH": "",
    "RABBITMQ_PREFETCH_SAILOR": 1,
    "STARTUP_REQUIRED": False,
    "HOOK_SHUTDOWN": False,
    "API_REQUEST_RETRY_ATTEMPTS": 3,
    "API_REQUEST_RETRY_DELAY": 100,
    "DATA_RATE_LIMIT": 10,
    "ERROR_RATE_LIMIT": 2,
    "SNAPSHOT_RATE_LIMIT": 2,
    "RATE_INTERVAL": 100,
    "PROCESS_AMQP_DRAIN": True,
    "AMQP_PUBLISH_RETRY_DELAY": 100,
    "AMQP_PUBLISH_RETRY_ATTEMPTS": math.inf,
    "AMQP_PUBLISH_MAX_RETRY_DELAY": 5 * 60 * 1000,
    "AMQP_PERSISTENT_MESSAGES": False,
    "OUTGOING_MESSAGE_SIZE_LIMIT": 10485760,
    "NO_SELF_PASSTRHOUGH": False,  # sic, as the platform spells it
    "PROTOCOL_VERSION": 1,
    "NO_ERROR_REPLIES": False,
    "INPUT_FORMAT": "default",
    "OBJECT_STORAGE_URI": None,
    "OBJECT_STORAGE_TOKEN": None,
    "OBJECT_STORAGE_SIZE_THRESHOLD": 1048576,
    "EMIT_LIGHTWEIGHT_MESSAGE": False,
    "AMQP_RECONNECT_ATTEMPTS": 3,
    "AMQP_RECONNECT_TIMEOUT": 100,
    "WAIT_MESSAGES_TIMEOUT": 50,
}

REQUIRED_ALWAYS = (
    "FLOW_ID",
    "EXEC_ID",
    "STEP_ID",
    "CONTAINER_ID",
    "WORKSPACE_ID",
    "USER_ID",
    "COMP_ID",
    "FUNCTION",
    "API_URI",
    "API_USERNAME",
    "API_KEY",
)
REQUIRED_FOR_MESSAGES = (
    "AMQP_URI",
    "LISTEN_MESSAGES_ON",
    "PUBLISH_MESSAGES_TO",
    "DATA_ROUTING_KEY",
    "ERROR_ROUTING_KEY",
    "REBOUND_ROUTING_KEY",
    "SNAPSHOT_ROUTING_KEY",
    "MESSAGE_CRYPTO_IV",
    "MESSAGE_CRYPTO_PASSWORD",
)
OIH_MARKERS = ("BACKCHANNEL_EXCHANGE", "NODE_EXCHANGE", "OUTPUT_ROUTING_KEY")
DIALECT_VARIABLE = PREFIX + "SAILOR_DIALECT"


class SettingsError(Exception):
    """A configuration error; the message names the variable. The worker exits non-zero."""


_INT_RE = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|\d+)")


def js_parse_int(value: str) -> float:
    """JavaScript ``parseInt(value)`` without a radix: leading integer, ``0x`` hex, else NaN."""
    match = _INT_RE.match(value)
    if not match:
        return math.nan
    sign, digits = match.groups()
    number = int(digits, 16) if digits[:2].lower() == "0x" else int(digits)
    return -number if sign == "-" else number


def _optional(env: Mapping[str, str], key: str, default: Any) -> Any:
    raw = env.get(PREFIX + key)
    if isinstance(default, bool):
        if raw is None:
            return default
        return not (raw == "" or raw == "false")
    if isinstance(default, int | float) and raw:
        parsed = js_parse_int(raw)
        return default if (parsed == 0 or math.isnan(parsed)) else int(parsed)
    return raw or default


def camel_case(name: str) -> str:
    """lodash ``_.camelCase`` for ASCII names: ``TENANT_ID`` -> ``tenantId``, ``fooBar`` stays."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Z]+|\d+", name)
    return "".join(w.lower() if i == 0 else w[:1].upper() + w[1:].lower() for i, w in enumerate(words))


def additional_vars(env: Mapping[str, str]) -> dict[str, str | None] | None:
    """``ADDITIONAL_VARS_FOR_HEADERS``: env names whose values are copied into every header set."""
    spec = env.get(PREFIX + "ADDITIONAL_VARS_FOR_HEADERS")
    if not spec:
        return None
    result: dict[str, str | None] = {}
    for name in (part.strip() for part in spec.split(",")):
        key = name[len(PREFIX) :] if name.startswith(PREFIX) else name
        result[key] = env.get(name)
    return result


def additional_headers(env: Mapping[str, str]) -> dict[str, str]:
    """The additional variables as headers: camelCased names, unset values dropped."""
    return {camel_case(k): v for k, v in (additional_vars(env) or {}).items() if v is not None}


def read_elasticio(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The elastic.io sailor's settings object: required names, optional names, ``additionalVars``."""
    env = os.environ if env is None else env
    names = list(REQUIRED_ALWAYS)
    if not env.get(PREFIX + "HOOK_SHUTDOWN"):
        names += REQUIRED_FOR_MESSAGES
    result: dict[str, Any] = {}
    for key in names:
        value = env.get(PREFIX + key)
        if not value:
            raise SettingsError(f"{PREFIX}{key} is missing")
        result[key] = value
    for key, default in OPTIONAL.items():
        result[key] = _optional(env, key, default)
    result["additionalVars"] = additional_vars(env)
    return result


def dialect_name(env: Mapping[str, str] | None = None) -> str:
    """``"oih"`` or ``"elasticio"``, by the override or by the OIH-only variables."""
    env = os.environ if env is None else env
    override = (env.get(DIALECT_VARIABLE) or "").strip().lower()
    if override:
        if override in ("elasticio", "elastic.io", "elastic", "e"):
            return "elasticio"
        if override in ("oih", "ferryman", "o"):
            return "oih"
        raise SettingsError(f"{DIALECT_VARIABLE} must be 'elasticio' or 'oih', not {override!r}")
    if any(env.get(PREFIX + name) for name in OIH_MARKERS):
        return "oih"
    return "elasticio"


def select_dialect(env: Mapping[str, str] | None = None) -> Any:
    """Build the dialect for this environment (raises SettingsError for a bad configuration)."""
    env = dict(os.environ if env is None else env)
    name = dialect_name(env)
    if name == "oih":
        try:
            module = importlib.import_module("elasticio_sailor.oih")
        except ImportError as exc:  # pragma: no cover - depends on the OIH module being installed
            raise SettingsError(f"the OIH dialect is not available: {exc}") from exc
        return module.create_dialect(env)
    from .elasticio import ElasticioDialect

    return ElasticioDialect(read_elasticio(env), env)
