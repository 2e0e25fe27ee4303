"""A recording HTTP server on 127.0.0.1 whose answers a test chooses, hostile ones included.

``RecordingServer.answer`` is a function ``(request) -> Answer``; every request is recorded (method, the
raw request target as sent, headers, body) before it is answered. ``Answer.drip`` sends the body one
chunk at a time with a pause in between, and ``sent``/``aborted`` tell whether the client went away first.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    target: str  # the request target exactly as it arrived: path and query, still percent-encoded
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    drip: float | None = None  # seconds between one-byte chunks of the body
    reason: str | None = None

    @classmethod
    def json(cls, value: Any, status: int = 200, **headers: str) -> Answer:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **headers})


@dataclass
class Drip:
    sent: int = 0
    total: int = 0
    aborted: bool = False


class RecordingServer:
    def __init__(self, answer: Callable[[Request], Answer] | None = None) -> None:
        self.answer = answer or (lambda request: Answer())
        self.requests: list[Request] = []
        self.drips: list[Drip] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stall

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                with server._lock:
                    server.requests.append(request)
                answer = server.answer(request)
                self.send_response(answer.status, answer.reason)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if answer.drip is None:
                    self.wfile.write(answer.body)
                    return
                drip = Drip(total=len(answer.body))
                with server._lock:
                    server.drips.append(drip)
                try:
                    for index in range(len(answer.body)):
                        self.wfile.write(answer.body[index : index + 1])
                        self.wfile.flush()
                        drip.sent += 1
                        time.sleep(answer.drip)
                except OSError:
                    drip.aborted = True
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )  # shutdown waits one poll interval

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def recording_server(answer: Callable[[Request], Answer] | None = None) -> Iterator[RecordingServer]:
    with RecordingServer(answer) as server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
