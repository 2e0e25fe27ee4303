"""Which Intercom host to call and with which token, from the credentials in ``cfg``.

Accepted ``server`` values: the region keys ``us``/``eu``/``au``, the three URLs themselves, the option
strings of the original Node component (``"https://api.intercom.io - The production API server"``, ...),
and ``custom`` / ``"--- Custom URL"`` together with ``otherServer``. A missing ``server`` means US.
"""

from __future__ import annotations

from typing import Any

from lib.intercom import config
from lib.intercom.errors import ConfigurationError

US = "https://api.intercom.io"
EU = "https://api.eu.intercom.io"
AU = "https://api.au.intercom.io"

REGIONS = {"us": US, "eu": EU, "au": AU}

# The option strings of the original component's `server` select (same text as the OpenAPI `servers`).
ORIGINAL_OPTIONS = {
    f"{US} - The production API server": US,
    f"{EU} - The european API server": EU,
    f"{AU} - The australian API server": AU,
}
CUSTOM_OPTIONS = ("custom", "--- Custom URL")


def _checked_url(url: str, field: str) -> str:
    """``url`` without a trailing slash, once lib.intercom.config has found it a safe http(s) base URL."""
    return config.server_url(url, field)


def base_url(cfg: dict[str, Any]) -> str:
    """The base URL (no trailing slash) chosen by ``server``/``otherServer``."""
    server = cfg.get("server")
    if server is None or (isinstance(server, str) and not server.strip()):
        return US
    if not isinstance(server, str):
        raise ConfigurationError("Field 'server' must be a string", field="server")
    value = server.strip()
    key = value.lower()
    if key in REGIONS:
        return REGIONS[key]
    if value in ORIGINAL_OPTIONS:
        return ORIGINAL_OPTIONS[value]
    if key in CUSTOM_OPTIONS or value in CUSTOM_OPTIONS:
        other = cfg.get("otherServer")
        if not isinstance(other, str) or not other.strip():
            raise ConfigurationError(
                "Field 'otherServer' is required when 'server' is the custom URL option", field="otherServer"
            )
        return _checked_url(other, "otherServer")
    # An option string in the original style whose description differs: "<url> - <text>".
    if " - " in value:
        value = value.split(" - ", 1)[0].strip()
    if value.startswith(("http://", "https://")):
        return _checked_url(value, "server")
    raise ConfigurationError(
        f"Field 'server' has an unknown value {server[:80]!r}: use us, eu, au, a URL or custom",
        field="server",
    )


def access_token(cfg: dict[str, Any]) -> str:
    """The bearer token from ``accessToken`` (or the original component's ``auth_bearerAuth``)."""
    for field in ("accessToken", "auth_bearerAuth"):
        token = cfg.get(field)
        if isinstance(token, str) and token.strip():
            return config.header_value(token, field)
    raise ConfigurationError(
        "Field 'accessToken' is required: the Intercom access token (legacy name 'auth_bearerAuth')",
        field="accessToken",
    )
