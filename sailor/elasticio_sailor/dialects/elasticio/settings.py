"""The elastic.io sailor's settings object, read from the environment exactly as the Node sailor reads it.

Why exact: the platform starts our container with the environment it gives the Node sailor, so names,
defaults and parsing quirks must match (the shared rules are in `elasticio_sailor.env`):
- a number is ``parseInt(value) || default`` (``0x`` is hex);
- a boolean is false for ``''`` and ``'false'``, true for anything else, default when unset;
- a string is ``value || default``;
- a missing or empty required variable stops start-up with ``<NAME> is missing``. A non-empty
  ``HOOK_SHUTDOWN`` (even ``'false'``) drops the AMQP and crypto requirements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ...env import PREFIX, SettingsError, additional_vars, env_int

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


def _optional(env: Mapping[str, str], key: str, default: Any) -> Any:
    raw = env.get(PREFIX + key)
    if isinstance(default, bool):
        if raw is None:
            return default
        return not (raw == "" or raw == "false")
    if isinstance(default, int | float):
        return env_int(env, key, default)
    return raw or default


def read_elasticio(env: Mapping[str, str]) -> dict[str, Any]:
    """The elastic.io sailor's settings object: required names, optional names, ``additionalVars``."""
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
