"""A TCP proxy on loopback that cuts the worker off the broker: the fault, liveness and reconnect tests.

Why our own: the faults we need are at the TCP level and must be timed by the test: reset every open
connection (RST, as a crashed load balancer or broker node does), accept a connection and reset it at
once (a load balancer with no healthy broker behind it; this is what makes pika's "getpeername()
failed" race happen), close them in order (FIN: a broker that went away, `cut`), or pass traffic.
One thread multiplexes all sockets with `select`, so a reset is immediate and nothing blocks on a
half-closed peer.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Mode = Literal["pass", "reset", "close"]
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


def _close(sock: socket.socket) -> None:
    """An orderly close (FIN), as a peer that goes away does."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _reset(sock: socket.socket) -> None:
    """A close with RST (SO_LINGER 0), as a crashed peer or a middlebox gives."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """Forwards 127.0.0.1:<port> to the broker. Mode "pass" forwards; "reset" accepts and resets at once;
    "close" accepts and closes at once.

    `reset_all()` resets every forwarded connection; `live` is how many are open now and `max_live`
    the most that were ever open at once (a worker must never hold two).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.mode: Mode = "pass"
        self.accepted = 0  # connections forwarded
        self.reset_on_accept = 0  # connections accepted and reset at once
        self.max_live = 0
        self._peer: dict[socket.socket, socket.socket] = {}
        self._out: dict[socket.socket, bytearray] = {}
        self._lock = threading.Lock()
        self._reset_requested = 0
        self._reset_done = 0
        self._graceful = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def live(self) -> int:
        with self._lock:
            return len(self._peer) // 2

    def cut(self) -> None:
        """The broker goes away: every connection closed (FIN), new ones closed at once until `restore()`."""
        self.mode = "close"
        self.reset_all(graceful=True)

    def restore(self) -> None:
        self.mode = "pass"

    def reset_all(self, timeout: float = 5.0, graceful: bool = False) -> None:
        """Reset (graceful: close) every forwarded connection, both sides, then return."""
        with self._lock:
            self._graceful = graceful
            self._reset_requested += 1
            wanted = self._reset_requested
        deadline = time.monotonic() + timeout
        while self._reset_done < wanted and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self._closed = True
        self._thread.join(5)
        self._listener.close()

    # --- the proxy thread ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closed:
            with self._lock:
                if self._reset_done < self._reset_requested:
                    for sock in list(self._peer):
                        (_close if self._graceful else _reset)(sock)
                    self._peer.clear()
                    self._out.clear()
                    self._reset_done = self._reset_requested
                sockets = list(self._peer)
            writers = [s for s in sockets if self._out.get(s)]
            try:
                readable, writable, _ = select.select([self._listener, *sockets], writers, [], 0.02)
            except (OSError, ValueError):
                continue
            for sock in readable:
                if sock is self._listener:
                    self._accept()
                else:
                    self._read(sock)
            for sock in writable:
                self._flush(sock)
        with self._lock:
            for sock in list(self._peer):
                _reset(sock)
            self._peer.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, OSError):
                return
            if self.mode == "reset":
                self.reset_on_accept += 1
                _reset(client)
                continue
            if self.mode == "close":
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            for s in (client, upstream):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._peer[client], self._peer[upstream] = upstream, client
                self._out[client], self._out[upstream] = bytearray(), bytearray()
                self.accepted += 1
                self.max_live = max(self.max_live, len(self._peer) // 2)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            peer = self._peer.pop(sock, None)
            self._out.pop(sock, None)
            if peer is not None:
                self._peer.pop(peer, None)
                self._out.pop(peer, None)
        for s in (sock, peer):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    def _read(self, sock: socket.socket) -> None:
        peer = self._peer.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        self._out[peer] += data
        self._flush(peer)

    def _flush(self, sock: socket.socket) -> None:
        buffer = self._out.get(sock)
        if not buffer:
            return
        try:
            sent = sock.send(buffer)
        except BlockingIOError:
            return
        except OSError:
            self._drop(sock)
            return
        del buffer[:sent]


def proxied_url(url: str, port: int) -> str:
    """The broker URL with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit((parts.scheme, f"{auth}127.0.0.1:{port}", parts.path, parts.query, parts.fragment))
