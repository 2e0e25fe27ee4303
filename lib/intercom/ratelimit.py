"""Rate limits: pacing from Intercom's headers before we are refused, and the bound on waiting for 429s.

Intercom's limit is per app (so per access token), counted in 10-second windows, and shared by every worker
using the token. Each answer says how much is left: ``X-RateLimit-Limit`` (per window), ``-Remaining`` and
``-Reset`` (epoch seconds when the window ends).

Pacing (``Pacer``, one per app and process, ``pacer_for``): while plenty remains, calls go at once. Once
``Remaining`` falls below ``LOW_WATER`` of the limit, the remaining calls are spread until ``Reset``: each
waits ``(reset - now) / remaining`` after the previous one, so a worker seeing 1 left waits for the next
window, and several workers sharing a token each slow down as the count they all see shrinks: the budget is
used to the end of the window with few 429s. Each call reserves its slot (and counts itself off
``remaining``), so the threads of one worker spread too. Waits end at the window's end plus ``MARGIN``.

429s: Intercom refused without processing, so waiting and retrying is always safe and does not use up
``maxRetries``. Instead, one call waits at most ``DEFAULT_RATE_LIMIT_WAIT`` seconds in total for 429s
(``max_rate_limit_wait`` of the client); past that the 429 is the call's error.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from lib.intercom.errors import IntercomError

DEFAULT_RATE_LIMIT_WAIT = 60.0  # seconds one call may spend waiting for 429s, in total
LOW_WATER = 0.2  # pace once less than this share of the window's limit remains
MIN_LOW_WATER = 5  # ... or fewer than this many calls, for small limits
MARGIN = 0.02  # seconds after Reset before the next window is used (the server may roll over late)
MIN_429_WAIT = 0.1  # a 429 whose Reset has passed still waits this long: the number of retries stays bounded


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class Pacer:
    """What Intercom last said about this token's window, and when the next call may go."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.remaining: float | None = None
        self.reset: float | None = None
        self.limit: float | None = None
        self.next_slot = 0.0

    def observe(self, headers: Mapping[str, Any]) -> None:
        """Record an answer's X-RateLimit headers (answers of one window may arrive out of order: the lowest
        remaining count of the newest window wins)."""
        remaining = _number(headers, "X-RateLimit-Remaining")
        reset = _number(headers, "X-RateLimit-Reset")
        if remaining is None or reset is None:
            return
        limit = _number(headers, "X-RateLimit-Limit")
        with self.lock:
            if self.reset is None or reset > self.reset:
                self.reset, self.remaining = reset, remaining
            elif reset == self.reset and (self.remaining is None or remaining < self.remaining):
                self.remaining = remaining
            if limit:
                self.limit = limit

    def delay(self) -> float:
        """Seconds the next call should wait; the call's slot is reserved (call right before sending)."""
        now = self.clock()
        with self.lock:
            if self.reset is None or self.remaining is None or now >= self.reset:
                return 0.0
            low = max(MIN_LOW_WATER, LOW_WATER * (self.limit or 0))
            if self.remaining >= low:
                self.remaining -= 1
                return 0.0
            if self.remaining < 1:
                return self.reset - now + MARGIN
            base = max(now, self.next_slot)
            slot = base + (self.reset - base) / self.remaining  # the last one left waits for the next window
            if slot >= self.reset:
                slot = self.reset + MARGIN
            self.next_slot = slot
            self.remaining -= 1
            return slot - now


_pacers: dict[tuple[str, str], Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(base_url: str, token: str, clock: Callable[[], float]) -> Pacer:
    """The one Pacer of an app (base URL and token) in this process: every client of the token (steps
    with other timeouts or retry settings get their own client) paces against the same window. Keyed by
    a hash, so the token is not kept a second time."""
    key = (base_url, hashlib.sha256(token.encode()).hexdigest())
    with _pacers_lock:
        pacer = _pacers.get(key)
        if pacer is None or pacer.clock is not clock:
            pacer = _pacers[key] = Pacer(clock)
        return pacer


def forget() -> None:
    """Drop every Pacer (with IntercomClient.clear_cache: tests, credential rotation)."""
    with _pacers_lock:
        _pacers.clear()


def wait_for_429(headers: Mapping[str, Any], now: float, backoff: float) -> float:
    """Seconds to wait before retrying a 429: until X-RateLimit-Reset, else Retry-After, else ``backoff``."""
    reset = _number(headers, "X-RateLimit-Reset")
    if reset is not None and reset - now >= 0:
        return reset - now + MARGIN
    retry_after = _number(headers, "Retry-After")
    if retry_after is not None and retry_after >= 0:
        return max(retry_after, MIN_429_WAIT)
    return max(backoff, MIN_429_WAIT)


def gave_up(error: IntercomError, waited: float, wanted: float, limit: float) -> IntercomError:
    """The 429 that ends a call, saying how long it waited and why it stopped."""
    note = (f"still rate-limited after waiting {waited:.1f} s; Intercom asks for {wanted:.1f} s more, beyond "
            f"the {limit:g} s a call may wait for rate limits")
    return IntercomError(f"{error.message} ({note})", status=error.status, code=error.code,
                         request_id=error.request_id, errors=error.errors, method=error.method,
                         path=error.path, attempts=error.attempts, retryable=True)
