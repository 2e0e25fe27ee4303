"""Broker-side helpers shared by the OIH tests: an OIH-like topology with unique names, a capture of
everything the runtime publishes, orchestrator-style input messages, and the two runtimes as subprocesses
(our worker, and the real ferryman running the Node twin)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pika

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
TWIN_DIR = HERE / "fixtures" / "twin"
TOKEN_SECRET = "orchestrator-signing-secret-used-only-in-tests-0123456789"  # the orchestrator's, not ours


def amqp_url() -> str:
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def make_token(**claims: Any) -> str:
    """An orchestrator token as ComponentOrchestrator._executeStep signs it."""
    return jwt.encode(claims, TOKEN_SECRET, algorithm="HS256")


def token_claims(flow_id: str, step_id: str, function: str, **extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "flowId": flow_id,
        "stepId": step_id,
        "userId": "user-1",
        "function": function,
        "flowExecId": "exec-" + uuid.uuid4().hex[:8],
        "fields": {},
        "apiKey": "iam-token-for-tests",
        "nodeSettings": {},
        "tenant": "tenant-1",
    }
    claims.update(extra)
    return claims


@dataclass
class Captured:
    exchange: str
    routing_key: str
    headers: dict[str, Any]
    body: bytes
    properties: dict[str, Any]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Topology:
    """Names as OIH's QueueCreator makes them, with a unique prefix so tests never collide."""

    prefix: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:10])

    @property
    def flow_id(self) -> str:
        return self.prefix

    step_id: str = "step1"

    @property
    def backchannel(self) -> str:
        return f"{self.prefix}-orchestrator_backchannel"

    @property
    def node_exchange(self) -> str:
        return f"flow-{self.prefix}"

    @property
    def collector(self) -> str:
        return f"{self.prefix}-component-events-collector"

    @property
    def event_bus(self) -> str:
        return f"{self.prefix}-event-bus"

    @property
    def dlx(self) -> str:
        return f"{self.prefix}-dlx"

    @property
    def input_queue(self) -> str:
        return f"flow-{self.prefix}:{self.step_id}:messages"

    @property
    def input_key(self) -> str:
        return f"flow-{self.prefix}.{self.step_id}.input"

    @property
    def rebound_key(self) -> str:
        return f"flow-{self.prefix}.{self.step_id}.rebound"

    @property
    def snapshot_key(self) -> str:
        return f"flow-{self.prefix}.{self.step_id}.snapshot"

    @property
    def capture_queue(self) -> str:
        return f"{self.prefix}:capture"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}:dead"

    def env(self, *, services_url: str | None) -> dict[str, str]:
        """The variables the OIH Kubernetes driver sets (with our names)."""
        env = {
            "ELASTICIO_AMQP_URI": amqp_url(),
            "ELASTICIO_LISTEN_MESSAGES_ON": self.input_queue,
            "ELASTICIO_BACKCHANNEL_EXCHANGE": self.backchannel,
            "ELASTICIO_NODE_EXCHANGE": self.node_exchange,
            "ELASTICIO_OUTPUT_ROUTING_KEY": "orchestrator_backchannel.input",
            "ELASTICIO_ERROR_ROUTING_KEY": "orchestrator_backchannel.error",
            "ELASTICIO_STATE_ROUTING_KEY": "orchestrator_backchannel.step_state",
            "ELASTICIO_REBOUND_ROUTING_KEY": self.rebound_key,
            "ELASTICIO_SNAPSHOT_ROUTING_KEY": self.snapshot_key,
            "ELASTICIO_SNAPSHOTS_EXCHANGE": self.collector,
            "ELASTICIO_EVENT_BUS_EXCHANGE": self.event_bus,
            "ELASTICIO_COMP_ID": "comp-twin",
            "ELASTICIO_API_URI": "http://127.0.0.1:9",
            "ELASTICIO_REBOUND_INITIAL_EXPIRATION": "15000",
            "ELASTICIO_RABBITMQ_PREFETCH_SAILOR": "1",
        }
        if services_url:
            for name in (
                "SECRET_SERVICE_BASE_URL",
                "SNAPSHOTS_SERVICE_BASE_URL",
                "DATAHUB_BASE_URL",
                "GOVERNANCE_SERVICE_BASE_URL",
            ):
                env["ELASTICIO_" + name] = services_url
        else:
            # the ferryman has cluster-internal defaults; point them at a closed local port instead
            for name in ("SECRET_SERVICE_BASE_URL", "SNAPSHOTS_SERVICE_BASE_URL"):
                env["ELASTICIO_" + name] = "http://127.0.0.1:9"
            env["ELASTICIO_DATAHUB_BASE_URL"] = "false"
        return env


class Broker:
    """A pika connection that sets a Topology up, feeds the input queue and reads everything published."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
        self.ch = self.conn.channel()
        self.captured: list[Captured] = []
        self.dead: list[tuple[dict, bytes]] = []

    def setup(self) -> None:
        t, ch = self.topo, self.ch
        for ex in (t.backchannel, t.node_exchange, t.collector, t.event_bus, t.dlx):
            ch.exchange_declare(ex, exchange_type="topic", durable=False, auto_delete=False)
        ch.queue_declare(
            t.input_queue,
            arguments={"x-dead-letter-exchange": t.dlx, "x-dead-letter-routing-key": "deadletter"},
        )
        ch.queue_bind(t.input_queue, t.node_exchange, t.input_key)
        ch.queue_declare(t.dead_queue)
        ch.queue_bind(t.dead_queue, t.dlx, "#")
        ch.queue_declare(t.capture_queue)
        for ex in (t.backchannel, t.collector, t.event_bus):
            ch.queue_bind(t.capture_queue, ex, "#")
        ch.queue_bind(t.capture_queue, t.node_exchange, t.rebound_key)

    def teardown(self) -> None:
        t = self.topo
        try:
            for q in (t.input_queue, t.dead_queue, t.capture_queue):
                self.ch.queue_delete(q)
            for ex in (t.backchannel, t.node_exchange, t.collector, t.event_bus, t.dlx):
                self.ch.exchange_delete(ex)
        finally:
            self.conn.close()

    def send(
        self, body: Any, *, token: str | None, headers: dict | None = None, content_type: str = "text/json"
    ) -> None:
        """Publish like the orchestrator's sendComponentInputMessage (plain JSON, text/json)."""
        hdrs = {
            "taskId": self.topo.flow_id,
            "execId": uuid.uuid4().hex,
            "userId": "DOES NOT MATTER",
            "stepId": self.topo.step_id,
        }
        if token is not None:
            hdrs["orchestratorToken"] = token
        hdrs.update(headers or {})
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.ch.basic_publish(
            self.topo.node_exchange,
            self.topo.input_key,
            raw,
            pika.BasicProperties(content_type=content_type, headers=hdrs),
        )

    def drain(self) -> list[Captured]:
        while True:
            method, props, body = self.ch.basic_get(self.topo.capture_queue, auto_ack=True)
            if method is None:
                return self.captured
            self.captured.append(
                Captured(
                    exchange=method.exchange,
                    routing_key=method.routing_key,
                    headers=dict(props.headers or {}),
                    body=body,
                    properties={
                        "content_type": props.content_type,
                        "content_encoding": props.content_encoding,
                        "delivery_mode": props.delivery_mode,
                        "expiration": props.expiration,
                    },
                )
            )

    def wait_for(self, predicate: Callable[[list[Captured]], bool], timeout: float = 20.0) -> list[Captured]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.drain()):
                return self.captured
            self.conn.sleep(0.05)
        seen = [(c.exchange, c.routing_key) for c in self.captured]
        raise AssertionError(f"timed out; captured so far: {seen}")

    def count(self, queue: str) -> int:
        return self.ch.queue_declare(queue, passive=True).method.message_count

    def dead_letters(self) -> list[tuple[dict, bytes]]:
        """Everything dead-lettered (rejected without requeue) so far, accumulated."""
        while True:
            method, props, body = self.ch.basic_get(self.topo.dead_queue, auto_ack=True)
            if method is None:
                return self.dead
            self.dead.append((dict(props.headers or {}), body))

    def dead_ids(self) -> list[str]:
        return [str(h.get("messageId")) for h, _ in self.dead_letters()]

    def leftover_ids(self) -> list[str]:
        """messageIds still in the input queue (unsettled once the runtime has stopped); consumes them."""
        out = []
        while True:
            method, props, _ = self.ch.basic_get(self.topo.input_queue, auto_ack=True)
            if method is None:
                return out
            out.append(str((props.headers or {}).get("messageId")))

    def for_input(self, message_id: str) -> list[Captured]:
        """Everything published for one input message (the runtimes set parentMessageId to its id)."""
        return [c for c in self.drain() if c.headers.get("parentMessageId") == message_id]

    def wait_done(self, message_id: str, timeout: float = 20.0) -> list[Captured]:
        """Wait for the input's "function complete", then return what was published for it."""
        self.wait_for(lambda _: any(c.routing_key == STATE_KEY for c in self.for_input(message_id)), timeout)
        return self.for_input(message_id)

    def settlement(self, message_id: str, grace: float = 0.5) -> str:
        """ "rejected" when the input was dead-lettered within `grace` seconds, else "acked"."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if message_id in self.dead_ids():
                return "rejected"
            self.conn.sleep(0.05)
        return "rejected" if message_id in self.dead_ids() else "acked"


STATE_KEY = "orchestrator_backchannel.step_state"
DATA_KEY = "orchestrator_backchannel.input"
ERROR_KEY = "orchestrator_backchannel.error"


class Runtime:
    """A runtime subprocess with its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in stop()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICIO_")}
        full_env.update(env)
        self.proc = subprocess.Popen(
            argv, env=full_env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def start_worker(env: dict[str, str], log_path: Path, component: Path = TWIN_DIR) -> Runtime:
    """Our sailor, as the container would run it: `python -m elasticio_sailor run`."""
    env = dict(env)
    env.setdefault("ELASTICIO_COMPONENT_PATH", str(component))
    env.setdefault("LOG_LEVEL", "info")
    return Runtime([sys.executable, "-m", "elasticio_sailor", "run"], env, component, log_path)


def start_ferryman(env: dict[str, str], log_path: Path) -> Runtime:
    """The real ferryman running the Node twin (COMPONENT_PATH is joined to cwd, so cwd is the twin)."""
    node = shutil.which("node") or "node"
    env = dict(env)
    env["ELASTICIO_COMPONENT_PATH"] = ""
    env.setdefault("LOG_LEVEL", "info")
    script = NODE_DIR / "node_modules" / "@openintegrationhub" / "ferryman" / "runGlobal.js"
    return Runtime([node, str(script)], env, NODE_DIR, log_path)


def wait_consuming(broker: Broker, runtime: Runtime, timeout: float = 30.0) -> None:
    """Wait until the runtime has a consumer on the input queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not runtime.alive():
            raise AssertionError(f"runtime exited early:\n{runtime.log()[-4000:]}")
        if broker.ch.queue_declare(broker.topo.input_queue, passive=True).method.consumer_count:
            return
        broker.conn.sleep(0.1)
    raise AssertionError(f"runtime never consumed:\n{runtime.log()[-4000:]}")
