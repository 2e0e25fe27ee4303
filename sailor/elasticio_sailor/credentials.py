"""The seam through which a component reports credentials the remote API refused, without the sailor
knowing that API.

Why: a dialect may cache credentials (the OIH dialect keeps each fetched secret for a short time instead of
fetching it for every message). When the secret was rotated meanwhile, the cached copy is refused (HTTP 401
or 403 from Intercom, say). Only the component sees that answer, and only the sailor knows where cfg came
from, so the component asks::

    from elasticio_sailor.credentials import credentials_rejected

    fresh = credentials_rejected(cfg)   # the API refused the credentials in cfg
    if fresh is not None:               # the platform had newer ones: retry that one call with `fresh`
        ...

`credentials_rejected` returns a copy of cfg with fresh credentials, or None (nothing newer, or no source
knows this cfg: outside a caching dialect, in `exec`, in tests), in which case the original error stands.
A component retries at most once per call. Sources register themselves (`register_source`) while they run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

CredentialsSource = Callable[[Mapping[str, Any]], "dict[str, Any] | None"]

_lock = threading.Lock()
_sources: list[CredentialsSource] = []


def register_source(source: CredentialsSource) -> None:
    """`source(cfg)` answers `credentials_rejected` for the cfgs it built (None for any other)."""
    with _lock:
        if source not in _sources:
            _sources.append(source)


def unregister_source(source: CredentialsSource) -> None:
    with _lock:
        if source in _sources:
            _sources.remove(source)


def credentials_rejected(cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """The remote API refused the credentials in `cfg`: cfg with fresh ones to retry with, or None."""
    with _lock:
        sources = list(_sources)
    for source in sources:
        fresh = source(cfg)
        if fresh is not None:
            return fresh
    return None
