"""Rate limits: pacing from Intercom's headers before we are refused, and the bound on waiting for 429s.

Intercom's limit is per app (so per access token), counted in 10-second windows, and shared by every worker
using the token. Each answer says how much is left: ``X-RateLimit-Limit`` (per window), ``-Remaining`` and
``-Reset`` (epoch seconds when the window ends).

Pacing (``Pacer``, one per app and process, ``pacer_for``): while plenty remains, calls go at once. Once
``Remaining`` falls below ``LOW_WATER`` of the limit, the calls left are spread until ``Reset``. A worker
plans with its share of them: the share of the window's calls so far that were its own (``Limit -
Remaining`` against its own answers), so two workers on one token each plan with about half. Each call then
waits ``(reset - now) / calls planned`` after the previous one, and one that would land past the reset waits
for the next window. Calls reserve their slots, so the threads of one worker spread too; right before
sending, a last look at the freshest count keeps a call from spending what other workers used meanwhile.
Waits end at the window's end plus ``MARGIN``.

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
    """What Intercom last said about this app's window, and when our next call may go.

    A call asks ``delay()`` (its slot, reserved), sleeps, asks ``go()`` (a last look: answers seen during
    the sleep may show that other workers used up the window), and reports its answer to ``observe()``.
    ``in_flight`` and ``waiting`` count this process's calls that the server's ``remaining`` does not yet
    reflect, so the threads of one worker do not all spend the same last calls.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.remaining: float | None = None  # the lowest X-RateLimit-Remaining seen for the current window
        self.reset: float | None = None
        self.limit: float | None = None
        self.in_flight = 0  # sent, not yet answered
        self.waiting = 0  # slot reserved, not yet sent
        self.ours = 0  # our answers in the current window
        self.next_slot = 0.0

    def _left(self, now: float) -> float | None:
        """Calls left in the current window after ours already on their way; None when unknown."""
        if self.reset is None or self.remaining is None or now >= self.reset:
            return None
        return self.remaining - self.in_flight

    def _share(self) -> float:
        """Our share of the window's calls so far (other workers use the same token): the part of what is
        left that we may plan to use. 1 when we cannot tell."""
        if not self.limit or self.remaining is None:
            return 1.0
        used = self.limit - self.remaining
        return 1.0 if used <= self.ours else max(self.ours / used, 0.1)

    def delay(self) -> float:
        """Seconds this call should wait before sending; its slot is reserved."""
        now = self.clock()
        with self.lock:
            left = self._left(now)
            ahead = self.waiting
            self.waiting += 1
            if left is None or left - ahead >= max(MIN_LOW_WATER, LOW_WATER * (self.limit or 0)):
                return 0.0
            left = (self.remaining or 0) * self._share() - self.in_flight - ahead  # ours to plan with
            if left < 1:
                return self.reset - now + MARGIN
            base = max(now, self.next_slot)
            slot = base + (self.reset - base) / left  # the last one left waits for the next window
            if slot >= self.reset:
                slot = self.reset + MARGIN
            self.next_slot = slot
            return slot - now

    def go(self) -> float:
        """Right before sending: 0, or the seconds to the window's end when nothing is left for this call
        (other workers used it meanwhile). The call then counts as in flight."""
        now = self.clock()
        with self.lock:
            self.waiting = max(0, self.waiting - 1)
            left = self._left(now)
            self.in_flight += 1
            if left is not None and left < 1:
                return self.reset - now + MARGIN
            return 0.0

    def observe(self, headers: Mapping[str, Any]) -> None:
        """The answer of a call that went (any answer, or none: pass {}), with its X-RateLimit headers.
        Answers of one window may arrive out of order: the lowest remaining count of the newest window
        wins."""
        remaining = _number(headers, "X-RateLimit-Remaining")
        reset = _number(headers, "X-RateLimit-Reset")
        limit = _number(headers, "X-RateLimit-Limit")
        with self.lock:
            self.in_flight = max(0, self.in_flight - 1)
            if remaining is None or reset is None:
                return
            if self.reset is None or reset > self.reset:
                self.reset, self.remaining, self.ours = reset, remaining, 1
            elif reset == self.reset:
                self.ours += 1
                if self.remaining is None or remaining < self.remaining:
                    self.remaining = remaining
            if limit:
                self.limit = limit


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
    note = (
        f"still rate-limited after waiting {waited:.1f} s; Intercom asks for {wanted:.1f} s more, beyond "
        f"the {limit:g} s a call may wait for rate limits"
    )
    return IntercomError(f"{error.message} ({note})", **{**error.fields(), "retryable": True})
