"""The HTTP transport under IntercomClient: checked addresses (SSRF) and a total deadline per call.

* **Checked addresses.** Every new connection resolves its host itself, refuses the forbidden addresses
  (``lib.intercom.config.checked_addresses``: link-local, metadata, private unless allowed) and connects to
  an address it has checked, so the name cannot resolve elsewhere between the check and the connect.
  Through an operator's proxy (``HTTPS_PROXY``) the proxy connects, so only the cfg checks apply.
* **Total deadline.** A socket timeout bounds each read, not the call: a server dripping a byte every
  quarter second keeps a call alive for ever. ``deadline(seconds)`` registers the call with one watchdog
  thread; every socket the call uses (new or reused from the pool) is attached to it, and when the time is
  up the watchdog shuts the socket down, which ends the blocked read at once. The caller then sees
  ``Deadline.expired`` and reports a timeout.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import NameResolutionError, NewConnectionError

from lib.intercom import config


class Deadline:
    """One call's deadline: the sockets it uses are shut down when it expires, unless the call has finished
    (under one lock, so that a socket back in the pool, maybe in use by the next call, is never shut)."""

    __slots__ = ("done", "expired", "lock", "sockets", "when")

    def __init__(self, when: float) -> None:
        self.when = when
        self.expired = False
        self.done = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self.lock:
            self.sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            for sock in self.sockets:
                _shut(sock)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            self.sockets.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        # socket.socket's own shutdown, also for an SSLSocket: the reader blocked in recv gets EOF at once
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread for the process, waking at the earliest pending deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._counter = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cv:
            if len(self._heap) > 4096:  # finished calls wait in the heap until their time: drop them
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (deadline.when, next(self._counter), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="intercom-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._cv.notify()

    def _run(self) -> None:
        with self._cv:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cv.wait(60)
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                _, _, due = heapq.heappop(self._heap)
                due.expire()


_watchdog = _Watchdog()
_current = threading.local()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Bound everything the block sends and reads on this thread to ``seconds`` in total."""
    entry = Deadline(time.monotonic() + seconds)
    _watchdog.add(entry)
    previous = getattr(_current, "deadline", None)
    _current.deadline = entry
    try:
        yield entry
    finally:
        entry.finish()
        _current.deadline = previous


def _attach(sock: socket.socket | None) -> None:
    entry = getattr(_current, "deadline", None)
    if entry is not None:
        entry.attach(sock)


class _Guarded:
    """Mixin for urllib3's connections: checked addresses on connect, the call's deadline on every use."""

    def _new_conn(self) -> socket.socket:
        if getattr(self, "proxy", None) is not None:
            return super()._new_conn()  # type: ignore[misc]
        host = self._dns_host  # type: ignore[attr-defined]
        try:
            addresses = config.checked_addresses(host, self.port)  # type: ignore[attr-defined]
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[attr-defined,arg-type]
        last: Exception | None = None
        for address in dict.fromkeys(addresses):
            self._dns_host = address
            try:
                return super()._new_conn()  # type: ignore[misc]
            except NewConnectionError as exc:
                last = exc
            finally:
                self._dns_host = host
        assert last is not None
        raise last

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _attach(self.sock)  # type: ignore[attr-defined]  # a new connection (TLS included)

    def request(self, *args: Any, **kwargs: Any) -> None:
        entry = getattr(_current, "deadline", None)
        if entry is not None and entry.expired:
            raise TimeoutError("the call's deadline has passed")
        _attach(self.sock)  # type: ignore[attr-defined]  # a connection reused from the pool
        super().request(*args, **kwargs)  # type: ignore[misc]


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


_POOLS = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class GuardedAdapter(HTTPAdapter):
    """requests' adapter with the guarded connections, also behind a proxy (deadline only there)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager
