"""Test harness for the AMQP worker: a per-test broker topology, a fake platform API, the worker process.

Shared by the integration tests, the interop tests and bench/worker.py. Everything it declares on
the broker has a unique name and is deleted again; the worker always runs as a real subprocess
(`python -m elasticio_sailor run`), configured only through the environment as the platform does.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pika
from elasticio_sailor.crypto import MessageCipher

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REPO = Path(__file__).resolve().parents[3]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "component"
PASSWORD = "testCryptoPassword"
IV = "iv=any16_symbols"
API_USER = "api-user@example.com"
API_KEY = "platform-api-key-5ecret"
CIPHER = MessageCipher(PASSWORD, IV)


# --- fake platform API ------------------------------------------------------------------------------
class FakePlatform:
    """The elastic.io API calls the sailor makes, on loopback: step data, accounts, hooks data."""

    def __init__(
        self, step_data: dict[str, Any] | None = None, steps: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.step_data = step_data if step_data is not None else {"config": {}, "snapshot": {}}
        self.steps = steps or {}  # step id -> step data, for several steps served by one fake
        self.requests: list[dict[str, Any]] = []
        self.hooks_data: Any = None
        self.fail_accounts = False
        self.step_status = 200
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _reply(self, status: int, body: Any = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                body = self._body() if method in ("POST", "PUT") else None
                auth = self.headers.get("Authorization", "")
                expected = "Basic " + base64.b64encode(f"{API_USER}:{API_KEY}".encode()).decode()
                platform.requests.append(
                    {"method": method, "path": self.path, "body": body, "auth_ok": auth == expected}
                )
                if auth != expected:
                    return self._reply(401, {"error": "unauthorized"})
                parts = self.path.strip("/").split("/")
                if (
                    method == "GET"
                    and len(parts) == 5
                    and parts[:2] == ["v1", "tasks"]
                    and parts[3] == "steps"
                ):
                    if platform.step_status != 200:
                        return self._reply(platform.step_status, {"error": "no such step"})
                    return self._reply(200, platform.steps.get(parts[4], platform.step_data))
                if method == "PUT" and parts[:2] == ["v1", "accounts"]:
                    if platform.fail_accounts:
                        return self._reply(400, {"error": "account update refused"})
                    return self._reply(200, {"id": parts[2], "keys": (body or {}).get("keys")})
                if parts[:3] == ["sailor-support", "hooks", "task"]:
                    if method == "POST":
                        if platform.hooks_data is not None:
                            return self._reply(409, {"error": "startup data already exists"})
                        platform.hooks_data = body
                        return self._reply(200, body)
                    if method == "GET":
                        return self._reply(200, platform.hooks_data)
                    if method == "DELETE":
                        platform.hooks_data = None
                        return self._reply(200, {})
                return self._reply(404, {"error": "not found"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakePlatform:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- broker topology --------------------------------------------------------------------------------
class Broker:
    """A unique topic exchange with an input queue (dead-lettering to key `dead`) and observer queues."""

    def __init__(self, url: str = AMQP_URL, prefix: str = "h2test") -> None:
        self.url = url
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.exchange = self.name
        self.queues: list[str] = []
        self.channel.exchange_declare(self.exchange, "topic", durable=False, auto_delete=False)
        self.input = self.queue(
            "in",
            "in",
            arguments={"x-dead-letter-exchange": self.exchange, "x-dead-letter-routing-key": "dead"},
        )

    def queue(self, suffix: str, *keys: str, arguments: dict[str, Any] | None = None) -> str:
        name = f"{self.name}:{suffix}"
        self.channel.queue_declare(name, durable=False, auto_delete=False, arguments=arguments)
        for key in keys:
            self.channel.queue_bind(name, self.exchange, routing_key=key)
        self.queues.append(name)
        return name

    def publish(
        self, body: bytes, headers: dict[str, Any] | None = None, routing_key: str = "in", **properties: Any
    ) -> None:
        props = pika.BasicProperties(
            headers=headers or {}, content_type="application/json", content_encoding="utf8", **properties
        )
        self.channel.basic_publish(self.exchange, routing_key, body, props)

    def get(self, queue: str, timeout: float = 15.0) -> tuple[Any, pika.BasicProperties, bytes]:
        """The next message of a queue (acked), waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is not None:
                return method, props, body
            if time.monotonic() > deadline:
                raise AssertionError(f"no message on {queue} within {timeout}s")
            self.connection.sleep(0.05)

    def get_all(self, queue: str, count: int, timeout: float = 30.0) -> list[tuple[Any, Any, bytes]]:
        deadline = time.monotonic() + timeout
        return [self.get(queue, max(0.1, deadline - time.monotonic())) for _ in range(count)]

    def count(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def close(self) -> None:
        try:
            for name in self.queues:
                self.channel.queue_delete(name)
            self.channel.exchange_delete(self.exchange)
        finally:
            self.connection.close()


def encode(message: dict[str, Any], version: int = 1, cipher: MessageCipher = CIPHER) -> bytes:
    return cipher.encrypt(message, version)


def input_message(data: Any, version: int = 1, **extra: Any) -> tuple[bytes, dict[str, Any]]:
    """An elastic.io wire message and its headers, as the previous step's sailor sends it."""
    message_id = str(uuid.uuid4())
    body = {"id": message_id, "body": data, "headers": {}, "attachments": {}, "metadata": {}, **extra}
    headers = {
        "messageId": message_id,
        "threadId": "thread-" + message_id[:8],
        "stepId": "step_0",
        "protocolVersion": version,
    }
    return encode(body, version), headers


def decode(props: pika.BasicProperties, body: bytes, cipher: MessageCipher = CIPHER) -> Any:
    version = (props.headers or {}).get("protocolVersion") or 1
    return cipher.decrypt(body, 1 if float(version) < 2 else 2)


# --- the worker process -----------------------------------------------------------------------------
def worker_env(
    broker: Broker, platform: FakePlatform, function: str = "script", **overrides: Any
) -> dict[str, str]:
    """The environment the elastic.io platform gives a step's container."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICIO_")}
    env.update(
        {
            "ELASTICIO_FLOW_ID": "flow-1",
            "ELASTICIO_EXEC_ID": "exec-1",
            "ELASTICIO_STEP_ID": "step_1",
            "ELASTICIO_CONTAINER_ID": "container-" + broker.name,
            "ELASTICIO_WORKSPACE_ID": "workspace-1",
            "ELASTICIO_USER_ID": "user-1",
            "ELASTICIO_COMP_ID": "comp-1",
            "ELASTICIO_FUNCTION": function,
            "ELASTICIO_API_URI": platform.url,
            "ELASTICIO_API_USERNAME": API_USER,
            "ELASTICIO_API_KEY": API_KEY,
            "ELASTICIO_AMQP_URI": broker.url,
            "ELASTICIO_LISTEN_MESSAGES_ON": broker.input,
            "ELASTICIO_PUBLISH_MESSAGES_TO": broker.exchange,
            "ELASTICIO_DATA_ROUTING_KEY": "data",
            "ELASTICIO_ERROR_ROUTING_KEY": "error",
            "ELASTICIO_REBOUND_ROUTING_KEY": "rebound",
            "ELASTICIO_SNAPSHOT_ROUTING_KEY": "snapshot",
            "ELASTICIO_MESSAGE_CRYPTO_IV": IV,
            "ELASTICIO_MESSAGE_CRYPTO_PASSWORD": PASSWORD,
            "LOG_LEVEL": "debug",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class WorkerProcess:
    """`python -m elasticio_sailor run` as a subprocess; its JSON-lines log goes to a temp file."""

    def __init__(self, env: dict[str, str], cwd: Path = FIXTURE, cmd: list[str] | None = None) -> None:
        self._log = tempfile.NamedTemporaryFile("w+b", prefix="sailor-worker-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self.proc = subprocess.Popen(
            cmd or [sys.executable, "-m", "elasticio_sailor", "run"],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.logs():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker did not log {text!r} within {timeout}s:\n{self.logs()[-4000:]}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 20.0) -> WorkerProcess:
        self.wait_for_log("Fully initialized and waiting for messages", timeout)
        return self

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"worker did not exit within {timeout}s:\n{self.logs()[-4000:]}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        self.log_path.unlink(missing_ok=True)


# --- a TCP proxy that can cut the broker off ----------------------------------------------------------
class FlakyProxy:
    """Forwards 127.0.0.1:<port> to the broker; `outage()` drops every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import socket

        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._down = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[Any] = []
        self._lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore()`."""
        import socket

        self._down.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def restore(self) -> None:
        self._down.clear()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._listener.close()


def proxied_url(url: str, port: int) -> str:
    """The broker URL with its host and port replaced by the proxy's."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit((parts.scheme, f"{auth}127.0.0.1:{port}", parts.path, parts.query, parts.fragment))
