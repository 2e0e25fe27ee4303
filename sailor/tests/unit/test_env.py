"""The environment rules both dialects share (elasticio_sailor.env)."""

from __future__ import annotations

import math

import pytest
from elasticio_sailor.env import SettingsError, camel_case, env_int
from elasticio_sailor.logs import secret_values


@pytest.mark.parametrize(
    ("raw", "elasticio", "oih"),
    [
        (None, 7, 7),
        ("", 7, 7),
        ("0", 7, 7),  # parseInt(...) || default: 0 cannot be configured
        ("junk", 7, 7),
        ("12ms", 12, 12),  # the leading digits count
        (" -3", -3, -3),
        ("0x10", 16, 7),  # the elastic.io sailor parses without a radix, the ferryman in base 10
    ],
)
def test_numbers_are_read_as_each_node_runtime_reads_them(raw: str | None, elasticio: int, oih: int) -> None:
    env = {} if raw is None else {"ELASTICIO_N": raw}
    assert env_int(env, "N", 7) == elasticio
    assert env_int(env, "N", 7, radix=10) == oih
    assert env_int({"ELASTICIO_N": "5"}, "N", math.inf) == 5


def test_camel_case_is_lodash_camel_case() -> None:
    assert [camel_case(n) for n in ("TENANT_ID", "fooBar", "XMLHttpRequest", "a-b c")] == [
        "tenantId",
        "fooBar",
        "xmlHttpRequest",
        "aBC",
    ]


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_a_secret_store_record_is_secret_in_every_string() -> None:
    record = {"accessToken": "tok-12345", "region": "eu-west", "list": ["abcd", "xy"], "n": 12345}
    assert secret_values(record, whole=True) == {"tok-12345", "eu-west", "abcd"}
    assert secret_values(record) == {"tok-12345"}  # a step's cfg: only credential-looking keys
