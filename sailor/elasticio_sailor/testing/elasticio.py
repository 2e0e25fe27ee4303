"""The elastic.io dialect in tests: the platform's broker names for one step, a fake platform API, the
environment a step's container gets, and messages encrypted as the previous step's sailor sends them."""

from __future__ import annotations

import base64
import os
import threading
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import pika

from ..crypto import MessageCipher
from .amqp import Broker, unique_name
from .http import JsonHandler

PASSWORD = "testCryptoPassword"
IV = "iv=any16_symbols"
API_USER = "api-user@example.com"
API_KEY = "platform-api-key-5ecret"
CIPHER = MessageCipher(PASSWORD, IV)


@dataclass
class ElasticioTopology:
    """One topic exchange and the step's input queue (dead-lettering to key `dead`); tests add observer
    queues with `Broker.queue(suffix, *keys)`."""

    prefix: str = field(default_factory=lambda: unique_name("elasticio"))
    input_key: str = "in"
    properties: dict[str, Any] = field(
        default_factory=lambda: {"content_type": "application/json", "content_encoding": "utf8"}
    )

    @property
    def exchange(self) -> str:
        return self.prefix

    @property
    def input(self) -> str:
        return f"{self.prefix}:in"

    def declare(self, broker: Broker) -> None:
        broker.declare_exchange(self.exchange)
        dead_letters = {"x-dead-letter-exchange": self.exchange, "x-dead-letter-routing-key": "dead"}
        broker.declare_queue(self.input, (self.exchange, self.input_key), arguments=dead_letters)


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

        class Handler(JsonHandler):
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
            "ELASTICIO_CONTAINER_ID": "container-" + broker.topo.prefix,
            "ELASTICIO_WORKSPACE_ID": "workspace-1",
            "ELASTICIO_USER_ID": "user-1",
            "ELASTICIO_COMP_ID": "comp-1",
            "ELASTICIO_FUNCTION": function,
            "ELASTICIO_API_URI": platform.url,
            "ELASTICIO_API_USERNAME": API_USER,
            "ELASTICIO_API_KEY": API_KEY,
            "ELASTICIO_AMQP_URI": broker.url,
            "ELASTICIO_LISTEN_MESSAGES_ON": broker.topo.input,
            "ELASTICIO_PUBLISH_MESSAGES_TO": broker.topo.exchange,
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
