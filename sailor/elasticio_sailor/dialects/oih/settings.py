"""The OIH-only environment variables, read as the ferryman reads them (lib/settings.js).

The rules both dialects share (prefix, numbers, extra headers) are in `elasticio_sailor.env`; the
transport's variables (AMQP_URI, LISTEN_MESSAGES_ON, prefetch, rate limits) are read by the dialect.
Differences from the ferryman, on purpose: the service URLs have no cluster-internal defaults (unset means the
feature is skipped, so the connector also runs outside a cluster), and ERROR_ROUTING_KEY defaults to the
back-channel's error key that OIH binds (the ferryman's `flows.error` is bound nowhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ...env import PREFIX, SettingsError, additional_headers, env_int

REQUIRED = ("BACKCHANNEL_EXCHANGE", "NODE_EXCHANGE", "OUTPUT_ROUTING_KEY", "REBOUND_ROUTING_KEY")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration in seconds; 0 is a value here (not "use the default"); anything unreadable is an error."""
    raw = (env.get(PREFIX + name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise SettingsError(f"{PREFIX}{name} must be a number of seconds >= 0, got {raw!r}")
    return value


def _url(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(PREFIX + name) or "").strip()
    if not raw or raw.lower() == "false":
        return None
    return raw.rstrip("/")


@dataclass(frozen=True)
class OihSettings:
    """What the OIH dialect reads from the environment."""

    backchannel_exchange: str
    node_exchange: str
    output_routing_key: str
    rebound_routing_key: str
    error_routing_key: str = "orchestrator_backchannel.error"
    state_routing_key: str = "orchestrator_backchannel.step_state"
    snapshots_exchange: str = "component-events-collector"
    snapshot_routing_key: str | None = None
    event_bus_exchange: str = "event-bus"
    governance_routing_key: str = "provenance"
    secret_service_url: str | None = None
    snapshots_service_url: str | None = None
    datahub_url: str | None = None
    governance_service_url: str | None = None
    comp_id: str | None = None
    exec_id: str | None = None
    workspace_id: str = "5559edd38968ec073600683"
    container_id: str = "dc1c8c3f-f9cb-49e1-a6b8-716af9e15948"
    protocol_version: int = 1
    rebound_initial_expiration: int = 15000
    rebound_limit: int = 20
    outgoing_message_size_limit: int = 10485760
    http_timeout: float = 30.0
    secret_cache_seconds: float = 60.0  # ELASTICIO_SAILOR_SECRET_CACHE_SECONDS; 0: fetch for every message
    additional_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OihSettings:
        missing = [PREFIX + n for n in REQUIRED if not env.get(PREFIX + n)]
        if missing:
            raise SettingsError(f"{missing[0]} is missing")

        def get(name: str, default: str | None = None) -> str | None:
            return env.get(PREFIX + name) or default

        return cls(
            backchannel_exchange=env[PREFIX + "BACKCHANNEL_EXCHANGE"],
            node_exchange=env[PREFIX + "NODE_EXCHANGE"],
            output_routing_key=env[PREFIX + "OUTPUT_ROUTING_KEY"],
            rebound_routing_key=env[PREFIX + "REBOUND_ROUTING_KEY"],
            error_routing_key=get("ERROR_ROUTING_KEY", "orchestrator_backchannel.error") or "",
            state_routing_key=get("STATE_ROUTING_KEY", "orchestrator_backchannel.step_state") or "",
            snapshots_exchange=get("SNAPSHOTS_EXCHANGE", "component-events-collector") or "",
            snapshot_routing_key=get("SNAPSHOT_ROUTING_KEY"),
            event_bus_exchange=get("EVENT_BUS_EXCHANGE", "event-bus") or "",
            governance_routing_key=get("GOVERNANCE_ROUTING_KEY", "provenance") or "",
            secret_service_url=_url(env, "SECRET_SERVICE_BASE_URL"),
            snapshots_service_url=_url(env, "SNAPSHOTS_SERVICE_BASE_URL"),
            datahub_url=_url(env, "DATAHUB_BASE_URL"),
            governance_service_url=_url(env, "GOVERNANCE_SERVICE_BASE_URL"),
            comp_id=get("COMP_ID"),
            exec_id=get("EXEC_ID"),
            workspace_id=get("WORKSPACE_ID", "5559edd38968ec073600683") or "",
            container_id=get("CONTAINER_ID", "dc1c8c3f-f9cb-49e1-a6b8-716af9e15948") or "",
            protocol_version=env_int(env, "PROTOCOL_VERSION", 1, radix=10),
            rebound_initial_expiration=env_int(env, "REBOUND_INITIAL_EXPIRATION", 15000, radix=10),
            rebound_limit=env_int(env, "REBOUND_LIMIT", 20, radix=10),
            outgoing_message_size_limit=env_int(env, "OUTGOING_MESSAGE_SIZE_LIMIT", 10485760, radix=10),
            http_timeout=float(env_int(env, "OIH_HTTP_TIMEOUT", 30, radix=10)),
            secret_cache_seconds=_seconds(env, "SAILOR_SECRET_CACHE_SECONDS", 60.0),
            additional_headers=additional_headers(env),
        )
