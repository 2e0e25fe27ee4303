"""Our settings reader against the Node sailor's own lib/settings.js, on the same environments."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from typing import Any

import pytest
from elasticio_sailor.dialects.elasticio.settings import read_elasticio
from elasticio_sailor.env import SettingsError, additional_headers, dialect_name

pytestmark = pytest.mark.timeout(60)

REQUIRED = {
    "ELASTICIO_FLOW_ID": "f",
    "ELASTICIO_EXEC_ID": "e",
    "ELASTICIO_STEP_ID": "s",
    "ELASTICIO_CONTAINER_ID": "c",
    "ELASTICIO_WORKSPACE_ID": "w",
    "ELASTICIO_USER_ID": "u",
    "ELASTICIO_COMP_ID": "comp",
    "ELASTICIO_FUNCTION": "fn",
    "ELASTICIO_API_URI": "http://api",
    "ELASTICIO_API_USERNAME": "user",
    "ELASTICIO_API_KEY": "key",
    "ELASTICIO_AMQP_URI": "amqp://x",
    "ELASTICIO_LISTEN_MESSAGES_ON": "q",
    "ELASTICIO_PUBLISH_MESSAGES_TO": "x",
    "ELASTICIO_DATA_ROUTING_KEY": "d",
    "ELASTICIO_ERROR_ROUTING_KEY": "e",
    "ELASTICIO_REBOUND_ROUTING_KEY": "r",
    "ELASTICIO_SNAPSHOT_ROUTING_KEY": "s",
    "ELASTICIO_MESSAGE_CRYPTO_IV": "iv=any16_symbols",
    "ELASTICIO_MESSAGE_CRYPTO_PASSWORD": "pw",
}

CASES: list[dict[str, str]] = [
    {},
    {
        "ELASTICIO_RABBITMQ_PREFETCH_SAILOR": "0",
        "ELASTICIO_REBOUND_LIMIT": "abc",
        "ELASTICIO_RATE_INTERVAL": "12ms",
        "ELASTICIO_DATA_RATE_LIMIT": "0x10",
        "ELASTICIO_REBOUND_INITIAL_EXPIRATION": " 42",
        "ELASTICIO_PROTOCOL_VERSION": "2",
        "ELASTICIO_AMQP_PUBLISH_RETRY_ATTEMPTS": "Infinity",
        "ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT": "-5",
        "ELASTICIO_API_REQUEST_RETRY_DELAY": "1e3",
    },
    {
        "ELASTICIO_STARTUP_REQUIRED": "false",
        "ELASTICIO_NO_ERROR_REPLIES": "",
        "ELASTICIO_PROCESS_AMQP_DRAIN": "0",
        "ELASTICIO_AMQP_PERSISTENT_MESSAGES": "no",
        "ELASTICIO_NO_SELF_PASSTRHOUGH": "true",
        "ELASTICIO_COMPONENT_PATH": "/abs",
        "ELASTICIO_INPUT_FORMAT": "error",
        "ELASTICIO_AMQP_RECONNECT_ATTEMPTS": "7",
    },
    {
        "ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS": "ELASTICIO_TENANT_ID, OTHER_VAR ,ELASTICIO_UNSET",
        "ELASTICIO_TENANT_ID": "t-1",
        "OTHER_VAR": "o",
    },
    {"ELASTICIO_HOOK_SHUTDOWN": "false", "ELASTICIO_AMQP_URI": "", "ELASTICIO_MESSAGE_CRYPTO_PASSWORD": ""},
]
NODE_SCRIPT = """
const settings = require(process.argv[1]);
let input = '';
process.stdin.on('data', d => input += d).on('end', () => {
  try { console.log(JSON.stringify({ok: settings.readFrom(JSON.parse(input))})); }
  catch (e) { console.log(JSON.stringify({error: e.message})); }
});
"""


def node_read(node_sailor, env: dict[str, str]) -> dict[str, Any]:
    settings_js = str(node_sailor.parent / "lib" / "settings.js")
    done = subprocess.run(
        [shutil.which("node") or "node", "-e", NODE_SCRIPT, settings_js],
        input=json.dumps(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def python_read(env: dict[str, str]) -> dict[str, Any]:
    try:
        result = read_elasticio(env)
    except SettingsError as exc:
        return {"error": str(exc)}

    out: dict[str, Any] = {}
    for key, value in result.items():
        if key == "additionalVars":  # undefined values and an undefined object vanish in JSON.stringify
            if value is not None:
                out[key] = {k: v for k, v in value.items() if v is not None}
        else:  # Infinity is written as null
            out[key] = None if isinstance(value, float) and math.isinf(value) else value
    return {"ok": out}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_settings_match_the_node_sailor(node_sailor, case):
    env = {**REQUIRED, **CASES[case]}
    assert python_read(env) == node_read(node_sailor, env)


@pytest.mark.parametrize(
    "missing", ["ELASTICIO_FLOW_ID", "ELASTICIO_API_KEY", "ELASTICIO_SNAPSHOT_ROUTING_KEY"]
)
def test_missing_variable_message_matches(node_sailor, missing):
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    assert python_read(env) == node_read(node_sailor, env) == {"error": f"{missing} is missing"}


def test_additional_headers_are_camel_cased_like_lodash():
    env = {
        "ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS": "ELASTICIO_TENANT_ID,XMLHttp_REQUEST,UNSET",
        "ELASTICIO_TENANT_ID": "t",
        "XMLHttp_REQUEST": "x",
    }
    assert additional_headers(env) == {"tenantId": "t", "xmlHttpRequest": "x"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "elasticio"),
        ({"ELASTICIO_BACKCHANNEL_EXCHANGE": "orchestrator_backchannel"}, "oih"),
        ({"ELASTICIO_OUTPUT_ROUTING_KEY": "k"}, "oih"),
        ({"ELASTICIO_NODE_EXCHANGE": "flow-1", "ELASTICIO_SAILOR_DIALECT": "elasticio"}, "elasticio"),
        ({"ELASTICIO_SAILOR_DIALECT": "OIH"}, "oih"),
    ],
)
def test_dialect_choice(env, expected):
    assert dialect_name(env) == expected


def test_unknown_dialect_is_a_named_error():
    with pytest.raises(SettingsError, match="ELASTICIO_SAILOR_DIALECT"):
        dialect_name({"ELASTICIO_SAILOR_DIALECT": "mule"})
