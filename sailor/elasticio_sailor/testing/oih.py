"""The OIH dialect in tests: the broker names OIH's QueueCreator makes for one step (unique per test), the
orchestrator's tokens and input messages."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from .amqp import Broker, amqp_url, unique_name

TOKEN_SECRET = "orchestrator-signing-secret-used-only-in-tests-0123456789"  # the orchestrator's, not ours
STATE_KEY = "orchestrator_backchannel.step_state"
DATA_KEY = "orchestrator_backchannel.input"
ERROR_KEY = "orchestrator_backchannel.error"


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
class OihTopology:
    """Names as OIH's QueueCreator makes them, with a unique prefix so tests never collide."""

    prefix: str = field(default_factory=lambda: unique_name("oih"))

    @property
    def flow_id(self) -> str:
        return self.prefix

    step_id: str = "step1"
    done_key = STATE_KEY  # "function complete": the last event of an input
    properties = {"content_type": "text/json"}  # what the orchestrator sends

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
    def input(self) -> str:
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

    @property
    def exchange(self) -> str:
        """Where the orchestrator publishes a step's input."""
        return self.node_exchange

    def declare(self, broker: Broker) -> None:
        """The exchanges, the input queue (dead-lettering to a queue of its own) and one capture queue
        bound to everything the runtime publishes to."""
        for exchange in (self.backchannel, self.node_exchange, self.collector, self.event_bus, self.dlx):
            broker.declare_exchange(exchange)
        dead_letters = {"x-dead-letter-exchange": self.dlx, "x-dead-letter-routing-key": "deadletter"}
        broker.declare_queue(self.input, (self.node_exchange, self.input_key), arguments=dead_letters)
        broker.declare_queue(self.dead_queue, (self.dlx, "#"))
        broker.declare_queue(
            self.capture_queue,
            *((exchange, "#") for exchange in (self.backchannel, self.collector, self.event_bus)),
            (self.node_exchange, self.rebound_key),
        )

    def env(self, *, services_url: str | None, url: str | None = None) -> dict[str, str]:
        """The variables the OIH Kubernetes driver sets (with our names)."""
        env = {
            "ELASTICIO_AMQP_URI": url or amqp_url(),
            "ELASTICIO_LISTEN_MESSAGES_ON": self.input,
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


def orchestrator_message(
    topo: OihTopology, body: Any, *, token: str | None, headers: dict | None = None
) -> tuple[bytes, dict[str, Any]]:
    """(body, headers) as the orchestrator's sendComponentInputMessage publishes them: plain JSON."""
    hdrs = {
        "taskId": topo.flow_id,
        "execId": uuid.uuid4().hex,
        "userId": "DOES NOT MATTER",
        "stepId": topo.step_id,
    }
    if token is not None:
        hdrs["orchestratorToken"] = token
    hdrs.update(headers or {})
    return (body if isinstance(body, bytes) else json.dumps(body).encode()), hdrs
