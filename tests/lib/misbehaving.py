"""A small HTTP server on loopback that answers however a test tells it to: loops, 429 storms, budgets.

``Misbehaving(handler)`` serves every request with ``handler(request) -> (status, headers, body)`` where
``request`` has ``method``, ``path``, ``query`` (dict of first values) and ``body`` (decoded JSON or None).
Every request is recorded in ``requests``. Real sockets, real HTTP/1.1 keep-alive: the client under test
runs exactly as against Intercom.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


Handler = Callable[[Request], tuple[int, dict[str, str], Any]]


class Misbehaving:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one write (flushed after each request) ...
            disable_nagle_algorithm = True  # ... and at once: no 40 ms delayed-ACK stall per request

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    self.command, parts.path, dict(parse_qsl(parts.query)), json.loads(raw) if raw else None
                )
                with outer.lock:
                    outer.requests.append(request)
                status, headers, body = outer.handler(request)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def cfg(self, **extra: Any) -> dict[str, Any]:
        return {
            "accessToken": "tok_misbehaving_1234567890",
            "server": "custom",
            "otherServer": self.url,
            **extra,
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Misbehaving:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
