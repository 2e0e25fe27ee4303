"""The elastic.io dialect: what the bytes on the wire mean for the elastic.io Node sailor (2.7.x).

Sources: sailor-nodejs lib/sailor.js (headers, passthrough, hooks), lib/amqp.js (routing keys, bodies,
error payload, rebound), ../shared/docs/sailor-protocol.md sections 3 to 7. In short:

- identity (flow, step, function, ...) comes from the environment; the step's cfg, snapshot,
  ``is_passthrough`` and variables come once from the platform API at start;
- an incoming body is ``{id, body, headers, attachments, metadata, passthrough}`` (AES, protocol v1
  base64 or v2 raw), and its ``body`` becomes ``Message.data``;
- everything goes to ``PUBLISH_MESSAGES_TO``: data with ``DATA_ROUTING_KEY`` (or the body header
  ``x-eio-routing-key``), errors with ``ERROR_ROUTING_KEY`` (plus an error reply to ``reply_to``),
  rebounds with ``REBOUND_ROUTING_KEY``, snapshots with ``SNAPSHOT_ROUTING_KEY``, httpReply to
  ``reply_to``; ``end`` publishes nothing.

Two deliberate differences from the Node sailor: every data emit gets a fresh ``messageId`` (the
Node sailor reuses one per input, which collides with its own de-duplication downstream, protocol
section 9.8), and the error object carries the component's ``to_dict()`` details after
``name, message, stack`` (readers parse it as JSON and ignore extra keys). Lightweight messages
(object storage) are not supported.
"""

from __future__ import annotations

import copy
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .crypto import MessageCipher, js_json_dumps
from .dialect import (
    AmqpSettings,
    Delivery,
    Execution,
    Publication,
    RateLimiter,
    RejectMessage,
    error_body,
    format_error,
    incoming_protocol_version,
    js_number,
    new_uuid,
    next_rebound_iteration,
    now_ms,
    read_incoming_headers,
    rebound_expiration,
    size_error,
    split_routing_key,
    valid_snapshot_update,
    wire_message,
)
from .logs import get_logger
from .message import Message
from .platform_api import PlatformApi, PlatformApiError
from .runner import run_hook
from .settings import camel_case

log = get_logger("elasticio_sailor.elasticio")

HEADER_ERROR_RESPONSE = "x-eio-error-response"


class ElasticioDialect:
    """See the module docstring; one instance per process, shared by all worker threads."""

    name = "elasticio"

    def __init__(self, settings: dict[str, Any], env: Mapping[str, str] | None = None) -> None:
        self.s = settings
        self.function = settings["FUNCTION"]
        # path.join(process.cwd(), COMPONENT_PATH): joined to cwd even when absolute (protocol 9.9)
        self.component_path = os.path.normpath(os.getcwd() + os.sep + (settings["COMPONENT_PATH"] or ""))
        self.shutdown_mode = bool(settings["HOOK_SHUTDOWN"])
        self.amqp = (
            None
            if self.shutdown_mode
            else AmqpSettings(
                uri=settings["AMQP_URI"],
                listen_queue=settings["LISTEN_MESSAGES_ON"],
                prefetch=settings["RABBITMQ_PREFETCH_SAILOR"],
                persistent_messages=settings["AMQP_PERSISTENT_MESSAGES"],
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
        self.additional_headers = {
            camel_case(k): v for k, v in (settings["additionalVars"] or {}).items() if v is not None
        }
        interval = settings["RATE_INTERVAL"]
        self.throttles = {
            "data": RateLimiter(settings["DATA_RATE_LIMIT"], interval),
            "error": RateLimiter(settings["ERROR_RATE_LIMIT"], interval),
            "snapshot": RateLimiter(settings["SNAPSHOT_RATE_LIMIT"], interval),
        }
        self.step_data: dict[str, Any] = {}
        self.snapshot: Any = {}
        self._snapshot_lock = threading.Lock()
        amqp_password = urlsplit(settings.get("AMQP_URI") or "").password
        self.secrets: list[str] = [
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

    def startup_error(self, exc: BaseException) -> list[Publication]:
        """reportError: an error without errorInput, with headers built from the environment."""
        headers = {**self.additional_headers, **self._identity_headers()}
        return self._error_publications(exc, headers, None, self.secrets)

    def stop(self) -> None:
        """Nothing to release: the API session closes with the process."""

    # --- incoming --------------------------------------------------------------------------------
    def prepare(self, delivery: Delivery) -> Execution:
        headers = delivery.headers or {}
        version = incoming_protocol_version(headers)
        if not delivery.body:
            raise RejectMessage("empty body")
        try:
            if self.s["INPUT_FORMAT"] == "error":
                payload = self._decode_error_format(delivery)
            else:
                payload = self.cipher.decrypt(delivery.body, version)
        except Exception as exc:
            raise RejectMessage(
                f"cannot decode the message (protocol version {version}): {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(payload, dict):
            raise RejectMessage(f"the message body is a JSON {type(payload).__name__}, not an object")
        if not isinstance(payload.get("headers"), dict):
            payload["headers"] = {}
        if headers.get("reply_to"):
            payload["headers"]["reply_to"] = headers["reply_to"]

        incoming = self._incoming_headers(headers)
        outgoing = {
            **incoming,
            **self.additional_headers,
            "parentMessageId": incoming.get("messageId"),
            "threadId": incoming.get("threadId"),
            "messageId": new_uuid(),
            **self._identity_headers(),
            "start": now_ms(),
        }
        cfg = copy.deepcopy(self.step_data.get("config") or {})
        with self._snapshot_lock:
            snapshot = copy.deepcopy(self.snapshot)
        message = wire_message(payload, payload.get("body"), payload.get("id"))
        return Execution(
            delivery=delivery,
            function=self.function,
            message=message,
            cfg=cfg,
            snapshot=snapshot if isinstance(snapshot, dict) else {},
            message_id=incoming.get("messageId") if isinstance(incoming.get("messageId"), str) else None,
            log_context={
                "threadId": incoming.get("threadId"),
                "messageId": incoming.get("messageId"),
                "parentMessageId": incoming.get("parentMessageId"),
                "execId": self.s["EXEC_ID"],
                "stepId": self.s["STEP_ID"],
            },
            secrets=self.secrets,
            state={
                "payload": payload,
                "incoming": incoming,
                "outgoing": outgoing,
                "passthrough": copy.deepcopy(payload.get("passthrough")) or {},
                "version": version,
                "flow_variables": dict(self.step_data.get("variables") or {}),
            },
        )

    def _decode_error_format(self, delivery: Delivery) -> dict[str, Any]:
        """INPUT_FORMAT=error: an error-queue consumer gets ``{body: {error, errorInput}, headers}``."""
        import json

        body = json.loads(delivery.body.decode("utf-8"))
        if body.get("error"):
            body["error"] = self.cipher.decrypt(str(body["error"]).encode(), 1)
        if body.get("errorInput"):
            body["errorInput"] = self.cipher.decrypt(str(body["errorInput"]).encode(), 1)
        return {"body": body, "headers": dict(delivery.headers or {})}

    @staticmethod
    def _incoming_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
        """readIncomingMessageHeaders, with stepId from the incoming header."""
        return read_incoming_headers(headers, headers.get("stepId"))

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
    def publications(self, execution: Execution, kind: str, payload: Any) -> list[Publication]:
        handler = {
            "data": self._data,
            "error": self._error,
            "rebound": self._rebound,
            "snapshot": self._snapshot,
            "updateSnapshot": self._update_snapshot,
            "updateKeys": self._update_keys,
            "httpReply": self._http_reply,
        }.get(kind)
        if handler is None:
            return []
        return handler(execution, payload)

    def on_end(self, execution: Execution) -> list[Publication]:
        return []  # the elastic.io sailor publishes nothing on end

    def _properties(self, **extra: Any) -> dict[str, Any]:
        return {
            "content_type": "application/json",
            "content_encoding": "utf8",
            "delivery_mode": 2 if self.s["AMQP_PERSISTENT_MESSAGES"] else 1,
            **extra,
        }

    def _headers(self, execution: Execution, **extra: Any) -> dict[str, Any]:
        headers = {**execution.state["outgoing"], **extra}
        if not headers.get("messageId"):
            headers["messageId"] = new_uuid()
        return headers

    def _fail(self, execution: Execution, err: Any) -> list[Publication]:
        """onError: the error event, counted (the delivery is dead-lettered)."""
        execution.failed = True
        self.throttles["error"].acquire()
        return self._error_publications(
            err,
            self._headers(execution, end=now_ms()),
            execution.delivery,
            execution.secrets,
            reply_first=True,
        )

    def _error(self, execution: Execution, payload: Any) -> list[Publication]:
        return self._fail(execution, payload)

    def _error_publications(
        self,
        err: Any,
        headers: dict[str, Any],
        original: Delivery | None,
        secrets: list[str],
        reply_first: bool = False,
    ) -> list[Publication]:
        """sendError: ``{error, errorInput}`` to the error key, and the bare error to reply_to.

        The Node sailor awaits the error throttle before its error publish but not before the reply,
        so a throttled error (an emitted one) reaches reply_to first; `reply_first` keeps that order.
        """
        payload, encrypted_error = error_body(self.cipher, err, original, secrets)
        headers = {**headers}
        headers.setdefault("messageId", new_uuid())
        props = self._properties()
        pubs = [
            Publication(
                self.s["PUBLISH_MESSAGES_TO"],
                self.s["ERROR_ROUTING_KEY"],
                js_json_dumps(payload).encode("utf-8"),
                headers,
                props,
                kind="error",
            )
        ]
        reply_to = headers.get("reply_to")
        if reply_to and not self.s["NO_ERROR_REPLIES"]:
            pubs.insert(
                0 if reply_first else 1,
                Publication(
                    self.s["PUBLISH_MESSAGES_TO"],
                    str(reply_to),
                    encrypted_error.encode("utf-8"),
                    {**headers, HEADER_ERROR_RESPONSE: True},
                    dict(props),
                    kind="error reply",
                ),
            )
        return pubs

    def _data(self, execution: Execution, payload: Any) -> list[Publication]:
        msg = payload if isinstance(payload, Message) else Message.from_any(payload)
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
        routing_key, data["headers"] = split_routing_key(data["headers"])
        routing_key = routing_key or self.s["DATA_ROUTING_KEY"]
        headers["protocolVersion"] = self.s["PROTOCOL_VERSION"]
        version = 1 if js_number(self.s["PROTOCOL_VERSION"]) < 2 else 2
        return self._encrypted(execution, data, version, routing_key, headers, "data")

    def _encrypted(
        self, execution: Execution, obj: Any, version: int, routing_key: Any, headers: dict, kind: str
    ) -> list[Publication]:
        """An encrypted event (data, httpReply) to PUBLISH_MESSAGES_TO, or the error when it exceeds
        OUTGOING_MESSAGE_SIZE_LIMIT; only data is throttled."""
        body = self.cipher.encrypt(obj, version)
        too_big = size_error(body, self.s["OUTGOING_MESSAGE_SIZE_LIMIT"])
        if too_big:
            return self._fail(execution, too_big)
        if kind in self.throttles:
            self.throttles[kind].acquire()
        return [
            Publication(
                self.s["PUBLISH_MESSAGES_TO"], str(routing_key), body, headers, self._properties(), kind=kind
            )
        ]

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
            "delivery_mode": 2 if self.s["AMQP_PERSISTENT_MESSAGES"] else 1,
        }
        return [
            Publication(
                self.s["PUBLISH_MESSAGES_TO"],
                self.s["REBOUND_ROUTING_KEY"],
                delivery.body,
                headers,
                props,
                mandatory=False,
                kind="rebound",
            )
        ]

    def _snapshot_publication(self, execution: Execution, data: Any, event: str) -> Publication:
        return Publication(
            self.s["PUBLISH_MESSAGES_TO"],
            self.s["SNAPSHOT_ROUTING_KEY"],
            js_json_dumps(data).encode("utf-8"),
            self._headers(execution, snapshotEvent=event),
            self._properties(),
            kind=event,
        )

    def _snapshot(self, execution: Execution, payload: Any) -> list[Publication]:
        with self._snapshot_lock:
            self.snapshot = copy.deepcopy(payload)
        self.throttles["snapshot"].acquire()
        return [self._snapshot_publication(execution, payload, "snapshot")]

    def _update_snapshot(self, execution: Execution, payload: Any) -> list[Publication]:
        if not valid_snapshot_update(payload):
            return []
        with self._snapshot_lock:
            if not isinstance(self.snapshot, dict):
                self.snapshot = {}
            self.snapshot.update(copy.deepcopy(payload))
        return [self._snapshot_publication(execution, payload, "updateSnapshot")]

    def _update_keys(self, execution: Execution, payload: Any) -> list[Publication]:
        try:
            self.api.update_account(execution.cfg.get("_account"), {"keys": payload})
            log.debug("Successfully updated keys")
            return []
        except Exception as exc:
            log.error("Failed to update keys: %s", exc)
            return self._fail(execution, exc)

    def _http_reply(self, execution: Execution, payload: Any) -> list[Publication]:
        headers = self._headers(execution)
        routing_key = headers.get("reply_to")
        if not routing_key:
            return self._fail(
                execution,
                {
                    "name": "Error",
                    "message": "Component emitted 'httpReply' event but "
                    "'reply_to' was not found in AMQP headers",
                },
            )
        reply = dict(payload or {})
        _, reply["headers"] = split_routing_key(reply.get("headers") or {})
        headers["protocolVersion"] = 1
        return self._encrypted(execution, reply, 1, routing_key, headers, "httpReply")
