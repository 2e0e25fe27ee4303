"""The elastic.io dialect: what the bytes on the wire mean for the elastic.io Node sailor (2.7.x).

Described in docs/wire-dialects.md; in short:

- identity (flow, step, function, ...) comes from the environment; the step's cfg, snapshot,
  ``is_passthrough`` and variables come once from the platform API at start;
- an incoming body is ``{id, body, headers, attachments, metadata, passthrough}`` (AES, protocol v1
  base64 or v2 raw), and its ``body`` becomes ``Message.data``;
- everything goes to ``PUBLISH_MESSAGES_TO``: data with ``DATA_ROUTING_KEY`` (or the body header
  ``x-eio-routing-key``), errors with ``ERROR_ROUTING_KEY`` (plus an error reply to ``reply_to``),
  rebounds with ``REBOUND_ROUTING_KEY``, snapshots with ``SNAPSHOT_ROUTING_KEY``, httpReply to
  ``reply_to``; ``end`` publishes nothing.

Two deliberate differences from the Node sailor: every data emit gets a fresh ``messageId`` (the
Node sailor reuses one per input, which collides with its own de-duplication downstream), and the
error object carries the component's ``to_dict()`` details after ``name, message, stack`` (readers
parse it as JSON and ignore extra keys). Lightweight messages (object storage) are not supported.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ...crypto import MessageCipher
from ...env import additional_headers
from ...logs import get_logger
from ...message import Message
from ...runner import run_hook
from ..base import (
    AmqpSettings,
    BaseDialect,
    Delivery,
    Execution,
    Publication,
    format_error,
    new_uuid,
    next_rebound_iteration,
    now_ms,
    read_incoming_headers,
    rebound_expiration,
    wire_message,
)
from .platform_api import PlatformApi, PlatformApiError

log = get_logger("elasticio_sailor.elasticio")


class ElasticioDialect(BaseDialect):
    """See the module docstring; one instance per process, shared by all worker threads."""

    name = "elasticio"

    def __init__(self, settings: dict[str, Any], env: Mapping[str, str]) -> None:
        self.s = settings
        self.function = settings["FUNCTION"]
        # path.join(process.cwd(), COMPONENT_PATH): joined to cwd even when absolute, as the Node sailor does
        self.component_path = os.path.normpath(os.getcwd() + os.sep + (settings["COMPONENT_PATH"] or ""))
        self.shutdown_mode = bool(settings["HOOK_SHUTDOWN"])
        self.persistent = settings["AMQP_PERSISTENT_MESSAGES"]
        self.protocol_version = settings["PROTOCOL_VERSION"]
        self.outgoing_size_limit = settings["OUTGOING_MESSAGE_SIZE_LIMIT"]
        self.error_replies = not settings["NO_ERROR_REPLIES"]
        self.amqp = (
            None
            if self.shutdown_mode
            else AmqpSettings(
                uri=settings["AMQP_URI"],
                listen_queue=settings["LISTEN_MESSAGES_ON"],
                prefetch=settings["RABBITMQ_PREFETCH_SAILOR"],
                publish_retry_delay=settings["AMQP_PUBLISH_RETRY_DELAY"],
                publish_retry_attempts=settings["AMQP_PUBLISH_RETRY_ATTEMPTS"],
                publish_max_retry_delay=settings["AMQP_PUBLISH_MAX_RETRY_DELAY"],
                reconnect_attempts=settings["AMQP_RECONNECT_ATTEMPTS"],
                reconnect_timeout=settings["AMQP_RECONNECT_TIMEOUT"],
                connection_name=f"{socket.gethostname()}-{settings['CONTAINER_ID']}",
            )
        )
        self.cipher = MessageCipher(
            settings.get("MESSAGE_CRYPTO_PASSWORD") or None, settings.get("MESSAGE_CRYPTO_IV") or None
        )
        self.api = PlatformApi(
            settings["API_URI"],
            settings["API_USERNAME"],
            settings["API_KEY"],
            retry_attempts=settings["API_REQUEST_RETRY_ATTEMPTS"],
            retry_delay_ms=settings["API_REQUEST_RETRY_DELAY"],
        )
        self.additional_headers = additional_headers(env)
        self.throttles = self._make_throttles(
            settings["DATA_RATE_LIMIT"],
            settings["ERROR_RATE_LIMIT"],
            settings["SNAPSHOT_RATE_LIMIT"],
            settings["RATE_INTERVAL"],
        )
        self.step_data: dict[str, Any] = {}
        self.snapshot: Any = {}
        self._snapshot_lock = threading.Lock()
        amqp_password = urlsplit(settings.get("AMQP_URI") or "").password
        self.secrets = [
            v for v in (settings.get("API_KEY"), settings.get("MESSAGE_CRYPTO_PASSWORD"), amqp_password) if v
        ]

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, component: Any) -> None:
        """Fetch the step data, then run the hooks as run.js does (shutdown mode, startup, init)."""
        self.step_data = self.api.retrieve_step(self.s["FLOW_ID"], self.s["STEP_ID"])
        self.snapshot = self.step_data.get("snapshot") or {}
        log.debug("received step data")
        cfg = self.step_data.get("config") or {}
        flow_id = self.s["FLOW_ID"]
        if self.shutdown_mode:
            state = self.api.retrieve_startup_data(flow_id)
            run_hook(component, self.function, "shutdown", cfg, state)
            self.api.delete_startup_data(flow_id)
            log.info("shutdown hook done")
            return
        if self.s["STARTUP_REQUIRED"]:
            result = run_hook(component, self.function, "startup", cfg)
            try:
                self.api.create_startup_data(flow_id, result if result else {})
            except PlatformApiError as exc:
                if exc.status_code != 409:
                    raise
                log.warning("Startup data already exists. Rewriting.")
                self.api.delete_startup_data(flow_id)
                self.api.create_startup_data(flow_id, result)
        run_hook(component, self.function, "init", cfg)

    def _startup_headers(self) -> dict[str, Any]:
        return {**self.additional_headers, **self._identity_headers()}

    def stop(self) -> None:
        """Nothing to release: the API session closes with the process."""

    # --- incoming --------------------------------------------------------------------------------
    def prepare(self, delivery: Delivery) -> Execution:
        payload, version = self._decode_delivery(delivery)
        incoming = read_incoming_headers(delivery.headers or {}, (delivery.headers or {}).get("stepId"))
        with self._snapshot_lock:
            snapshot = copy.deepcopy(self.snapshot)
        return Execution(
            delivery=delivery,
            function=self.function,
            message=wire_message(payload, payload.get("body"), payload.get("id")),
            cfg=copy.deepcopy(self.step_data.get("config") or {}),
            snapshot=snapshot if isinstance(snapshot, dict) else {},
            log_context=self._log_context(
                incoming, {"execId": self.s["EXEC_ID"], "stepId": self.s["STEP_ID"]}
            ),
            secrets=self.secrets,
            flow_variables=dict(self.step_data.get("variables") or {}),
            state={
                "payload": payload,
                "incoming": incoming,
                "outgoing": self._outgoing_headers(incoming, self._identity_headers()),
                "passthrough": copy.deepcopy(payload.get("passthrough")) or {},
                "version": version,
            },
        )

    def _decode(self, delivery: Delivery, version: int) -> Any:
        """INPUT_FORMAT=error: an error-queue consumer gets ``{body: {error, errorInput}, headers}``."""
        if self.s["INPUT_FORMAT"] != "error":
            return super()._decode(delivery, version)
        body = json.loads(delivery.body.decode("utf-8"))
        if body.get("error"):
            body["error"] = self.cipher.decrypt(str(body["error"]).encode(), 1)
        if body.get("errorInput"):
            body["errorInput"] = self.cipher.decrypt(str(body["errorInput"]).encode(), 1)
        return {"body": body, "headers": dict(delivery.headers or {})}

    def _identity_headers(self) -> dict[str, Any]:
        s = self.s
        return {
            "execId": s["EXEC_ID"],
            "taskId": s["FLOW_ID"],
            "workspaceId": s["WORKSPACE_ID"],
            "containerId": s["CONTAINER_ID"],
            "userId": s["USER_ID"],
            "stepId": s["STEP_ID"],
            "compId": s["COMP_ID"],
            "function": s["FUNCTION"],
        }

    # --- outgoing --------------------------------------------------------------------------------
    def _route(self, kind: str, execution: Execution | None) -> tuple[str, str]:
        key = {
            "data": "DATA_ROUTING_KEY",
            "error": "ERROR_ROUTING_KEY",
            "rebound": "REBOUND_ROUTING_KEY",
            "snapshot": "SNAPSHOT_ROUTING_KEY",
        }.get(kind)
        return self.s["PUBLISH_MESSAGES_TO"], self.s[key] if key else ""

    def _data_message(
        self, execution: Execution, msg: Message
    ) -> tuple[dict[str, Any], dict[str, Any], list[Publication]]:
        """``{id, body, headers, attachments, metadata, passthrough}``; a passthrough step adds its own
        input (NO_SELF_PASSTRHOUGH) or output under its step id."""
        state = execution.state
        headers = self._headers(execution, messageId=msg.id or new_uuid(), end=now_ms())
        data: dict[str, Any] = {}
        if msg.id is not None:
            data["id"] = msg.id
        data["body"] = msg.data
        data["headers"] = dict(msg.headers or {})
        data["attachments"] = msg.attachments or {}
        data["metadata"] = msg.metadata or {}
        if msg.passthrough:
            data["passthrough"] = msg.passthrough
        if self.step_data.get("is_passthrough") is True:
            if self.s["NO_SELF_PASSTRHOUGH"]:
                data["passthrough"] = {**state["passthrough"]}
                step_id = state["incoming"].get("stepId")
                if step_id:
                    own = {k: v for k, v in state["payload"].items() if k != "passthrough"}
                    data["passthrough"][step_id] = own
            else:
                own = {k: v for k, v in data.items() if k != "passthrough"}
                data["passthrough"] = {**state["passthrough"], self.s["STEP_ID"]: own}
        return data, headers, []

    def _rebound(self, execution: Execution, payload: Any) -> list[Publication]:
        """Re-send the original bytes and properties with a doubled expiration, up to REBOUND_LIMIT."""
        delivery = execution.delivery
        reason = format_error(payload)["message"]
        original = dict(delivery.headers or {})
        iteration = next_rebound_iteration(original.get("reboundIteration"))
        if iteration > self.s["REBOUND_LIMIT"]:
            # As the Node sailor: an error event, but not counted as one, so the delivery is acked.
            return self._error_publications(
                {"name": "Error", "message": "Rebound limit exceeded"},
                self._headers(execution),
                delivery,
                execution.secrets,
            )
        headers = {**original, "end": now_ms(), "reboundReason": reason, "reboundIteration": iteration}
        props = {
            **delivery.properties,
            "expiration": rebound_expiration(iteration, self.s["REBOUND_INITIAL_EXPIRATION"]),
            "delivery_mode": 2 if self.persistent else 1,
        }
        exchange, routing_key = self._route("rebound", execution)
        return [
            Publication(exchange, routing_key, delivery.body, headers, props, mandatory=False, kind="rebound")
        ]

    def _remember_snapshot(self, payload: Any, replace: bool) -> None:
        """The snapshot is fetched once at start, so the emitted one is what the next message gets."""
        with self._snapshot_lock:
            if replace:
                self.snapshot = copy.deepcopy(payload)
                return
            if not isinstance(self.snapshot, dict):
                self.snapshot = {}
            self.snapshot.update(copy.deepcopy(payload))

    def _update_keys(self, execution: Execution, payload: Any) -> list[Publication]:
        try:
            self.api.update_account(execution.cfg.get("_account"), {"keys": payload})
            log.debug("Successfully updated keys")
            return []
        except Exception as exc:
            log.error("Failed to update keys: %s", exc)
            return self._fail(execution, exc)
