"""Configuration checks done before any request: field-named errors, and where a custom server may point.

Two concerns live here because both decide, from the step's cfg alone, whether a request may be sent:

* **Field checks.** A token or ``intercomVersion`` goes into an HTTP header: it must be Latin-1 text
  without control characters (CR/LF would split the header). ``otherServer`` (or a URL in ``server``) must
  be an absolute http(s) URL without user info (``requests`` would send Basic auth instead of our Bearer
  token), with a valid port and host, and without whitespace or control characters. (Numbers and choices
  in step fields follow the rules of lib/step_fields.py.)
* **Where a custom server may point (SSRF).** On a shared integration platform a flow's author must not
  reach the node's cloud credentials or internal services through the connector. ``check_address`` sorts
  an IP address into *refused always* (link-local, cloud metadata, unspecified, multicast/broadcast,
  including IPv4-mapped/6to4/NAT64 forms), *loopback* (allowed: the connector's own container; our tests
  and sidecar proxies use it), *private* (refused unless ``INTERCOM_ALLOW_PRIVATE_HOSTS`` lists it) and
  public (allowed). Literal addresses (decimal, hex and octal IPv4 forms included) and known metadata host
  names are refused when the cfg is read; every other name is resolved by the connection itself
  (``lib.intercom.client``), which checks each resolved address and connects to the checked one, so a name
  that resolves differently a second later (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from lib.intercom.errors import ConfigurationError

#: Comma-separated host names, IP addresses or networks (CIDR) a custom server may use although they are
#: private, e.g. ``10.0.0.0/8,intercom-proxy.internal``; ``*`` allows every private address. Link-local and
#: metadata addresses stay refused whatever it says.
ALLOW_PRIVATE_ENV = "INTERCOM_ALLOW_PRIVATE_HOSTS"

_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
_METADATA_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # link-local: the metadata of AWS/GCP/Azure/OpenStack/Oracle, AWS ECS
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure WireServer
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the host itself on Linux
        "::/128",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "ff00::/8",  # multicast, broadcast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ------------------------------------------------------------------------------------------ field checks
def header_value(value: Any, field: str) -> str:
    """``value`` as a header-safe string, or a ConfigurationError naming ``field`` (never the value)."""
    text = value.strip() if isinstance(value, str) else str(value)
    if _CONTROL.search(text):
        raise ConfigurationError(
            f"Field '{field}' must not contain control characters such as CR or LF", field=field
        )
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"Field '{field}' must contain only Latin-1 (ISO-8859-1) characters", field=field
        ) from None
    return text


def server_url(url: str, field: str) -> str:
    """``url`` without a trailing slash if it is a safe absolute http(s) base URL; else a field's error."""
    text = url.strip()
    if _CONTROL.search(text) or " " in text:
        raise ConfigurationError(
            f"Field '{field}' must not contain spaces or control characters such as CR or LF", field=field
        )
    try:
        text.encode("ascii")
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"Field '{field}' must be an ASCII URL (write a non-ASCII host name in its xn-- form)",
            field=field,
        ) from None
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", "Port could not be cast"
        raise ConfigurationError(f"Field '{field}' is not a valid URL: {exc}", field=field) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"Field '{field}' must be an absolute http(s) URL such as https://api.intercom.io", field=field
        )
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"Field '{field}' must not contain user info (user:password@): the access "
            "token is the only credential sent",
            field=field,
        )
    if port == 0:
        raise ConfigurationError(f"Field '{field}' has an invalid port 0", field=field)
    if parts.query or parts.fragment:
        raise ConfigurationError(f"Field '{field}' must not contain a query or fragment", field=field)
    literal = ip_literal(host)
    if literal is None and not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
        raise ConfigurationError(f"Field '{field}' has an invalid host name", field=field)
    if host.rstrip(".").lower() in _METADATA_NAMES:
        raise ConfigurationError(
            f"Field '{field}' points at a cloud metadata host, which is refused", field=field
        )
    if literal is not None:
        reason = refusal(literal, host)
        if reason:
            raise ConfigurationError(
                f"Field '{field}' points at {reason}, which is refused{_allow_hint(reason)}", field=field
            )
    return text.rstrip("/")


# ---------------------------------------------------------------------------------------------- SSRF
def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` denotes literally, including the decimal/hex/octal IPv4 forms inet_aton takes."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if re.fullmatch(r"(0[xX][0-9a-fA-F]+|[0-9]+)(\.(0[xX][0-9a-fA-F]+|[0-9]+)){0,3}", host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str = "") -> str | None:
    """Why a custom server must not be reached at ``address`` (None when it may)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal(embedded, host)
            return f"{reason} (as {address})" if reason else None
    if any(address in network for network in _METADATA_NETWORKS if network.version == address.version):
        return f"a link-local, metadata or non-unicast address ({address})"
    if address.is_loopback:
        return None
    if not address.is_global and not _private_allowed(address, host):
        return f"a private address ({address})"
    return None


def _allow_hint(reason: str) -> str:
    return f" (list it in {ALLOW_PRIVATE_ENV} to allow it)" if reason.startswith("a private") else ""


def _private_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> bool:
    allowed = os.environ.get(ALLOW_PRIVATE_ENV, "")
    for entry in (e.strip() for e in allowed.split(",")):
        if not entry:
            continue
        if entry == "*" or (host and entry.lower() == host.lower().rstrip(".")):
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (tests monkeypatch this: no name is looked up for real)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class ForbiddenAddress(ConfigurationError):
    """A custom server's name resolved to an address that must not be reached (nothing was sent)."""


def checked_addresses(host: str, port: int) -> list[str]:
    """The addresses of ``host`` to connect to, after refusing every forbidden one (ForbiddenAddress)."""
    addresses = _resolve(host, port)
    for text in addresses:
        reason = refusal(ipaddress.ip_address(text.split("%", 1)[0]), host)
        if reason:
            raise ForbiddenAddress(
                f"Field 'otherServer': the host {host[:100]} resolves to {reason}, which "
                f"is refused{_allow_hint(reason)}",
                field="otherServer",
            )
    return addresses
