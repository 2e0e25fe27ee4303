"""One retry with fresh credentials when Intercom refuses the access token (401/403).

Why: the sailor may hand us a cached secret (the OIH dialect keeps each fetched secret for a short time).
When it was rotated meanwhile, Intercom answers 401 (or 403); we then tell the sailor, which drops the
cached copy and fetches it again (``elasticio_sailor.credentials``), and repeat that one call once with the
new token. Nothing was sent to Intercom with effect (it refused the request), so the retry cannot
duplicate anything. When the sailor has nothing newer, the original error stands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from elasticio_sailor.credentials import credentials_rejected

from lib.intercom.client import IntercomClient
from lib.intercom.errors import IntercomError

T = TypeVar("T")
AUTH_STATUSES = frozenset({401, 403})


def _fresh_cfg(exc: IntercomError, cfg: dict[str, Any]) -> dict[str, Any] | None:
    return credentials_rejected(cfg) if exc.status in AUTH_STATUSES else None


def call(run: Callable[[IntercomClient], T], client: IntercomClient, cfg: dict[str, Any]) -> T:
    """run(client) (the client for cfg); on 401/403 once more with the sailor's fresh credentials, if any."""
    try:
        return run(client)
    except IntercomError as exc:
        fresh = _fresh_cfg(exc, cfg)
        if fresh is None:
            raise
    return run(IntercomClient.from_cfg(fresh))


def iterate(
    run: Callable[[IntercomClient], Iterator[T]], client: IntercomClient, cfg: dict[str, Any]
) -> Iterator[T]:
    """`call` for a lazy sequence (pages): only a refusal before the first item is retried, so nothing
    already emitted is emitted twice."""
    items = run(client)
    try:
        first = next(items)
    except StopIteration:
        return
    except IntercomError as exc:
        fresh = _fresh_cfg(exc, cfg)
        if fresh is None:
            raise
        yield from run(IntercomClient.from_cfg(fresh))
        return
    yield first
    yield from items
