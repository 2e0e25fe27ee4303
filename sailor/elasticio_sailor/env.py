"""The environment rules both dialects read: names, numbers, extra headers, and which dialect runs.

Why one module: the platform starts our container with the environment it gives the Node runtime
(the elastic.io sailor or its fork, the OIH ferryman), and the two read it the same way:
- every name carries the prefix ``ELASTICIO_``;
- a number is ``parseInt(value) || default``: ``0``, ``NaN`` and junk fall back to the default and
  leading digits are taken (``"12ms"`` -> 12); the elastic.io sailor reads ``0x`` as hex, the
  ferryman parses in base 10;
- ``ADDITIONAL_VARS_FOR_HEADERS`` names variables copied, camelCased, into every outgoing header set.

Dialect choice (not in either Node runtime, which each speak one dialect): OIH when any of
``ELASTICIO_BACKCHANNEL_EXCHANGE``, ``ELASTICIO_NODE_EXCHANGE``, ``ELASTICIO_OUTPUT_ROUTING_KEY`` is
set (mandatory in the ferryman, unknown to the elastic.io sailor), else elastic.io;
``ELASTICIO_SAILOR_DIALECT=elasticio|oih`` overrides.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TypeVar

from .js import js_parse_int

PREFIX = "ELASTICIO_"
DIALECT_VARIABLE = PREFIX + "SAILOR_DIALECT"
OIH_MARKERS = ("BACKCHANNEL_EXCHANGE", "NODE_EXCHANGE", "OUTPUT_ROUTING_KEY")

Default = TypeVar("Default", int, float)


class SettingsError(ValueError):
    """A configuration value is missing or wrong; the message names the variable. The worker exits 1.

    A ValueError, as the other bad-value errors met at start-up (an AES key of the wrong size)."""


def env_int(
    env: Mapping[str, str], name: str, default: Default, *, radix: int | None = None
) -> int | Default:
    """``parseInt(env[PREFIX + name], radix) || default``, as both Node runtimes read numbers."""
    raw = env.get(PREFIX + name)
    if not raw:
        return default
    parsed = js_parse_int(raw, radix)
    return default if (parsed == 0 or math.isnan(parsed)) else int(parsed)


_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Z]+|\d+")


def camel_case(name: str) -> str:
    """lodash ``_.camelCase`` for ASCII names: ``TENANT_ID`` -> ``tenantId``, ``fooBar`` stays."""
    words = _WORD.findall(name)
    return "".join(w.lower() if i == 0 else w[:1].upper() + w[1:].lower() for i, w in enumerate(words))


def additional_vars(env: Mapping[str, str]) -> dict[str, str | None] | None:
    """``ADDITIONAL_VARS_FOR_HEADERS``: env names (prefix dropped) and their values, None when unset."""
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


def dialect_name(env: Mapping[str, str]) -> str:
    """``"oih"`` or ``"elasticio"``, by the override or by the OIH-only variables."""
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
