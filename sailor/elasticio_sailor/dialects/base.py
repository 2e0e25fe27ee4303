"""The seam between the AMQP worker and a platform dialect, and what both dialects share.

Why a seam: the two platforms (elastic.io, the OIH ferryman, a fork of the elastic.io sailor) share
the transport (one queue in, confirmed publishes out, ack or dead-letter) but differ in what the
bytes mean: how a delivery is decoded, where cfg and the snapshot come from, which exchange and
routing key each emitted event goes to, with which headers and body. The worker (`worker.py`,
`amqp.py`) owns only the transport; a dialect owns only the meaning and never touches pika. A new
dialect is one package under `dialects/` subclassing `BaseDialect`, plus one branch in
`dialects.select_dialect`. The wire itself is described in docs/wire-dialects.md.

The worker drives a dialect like this, for every delivery, on a worker thread (never the I/O
thread, so a dialect may block on HTTP calls, sleep for rate limits, and so on):

1. `execution = dialect.prepare(delivery)`: decode and decrypt the body, build the `Message`, pick
   the function, cfg and snapshot, read the incoming headers. Raise `RejectMessage(reason)` for a
   message that cannot be decoded: the worker logs it with its ids and rejects it without requeue
   (dead-letter); nothing is published. A decodable delivery that cannot run (OIH: its secret
   cannot be fetched) sets `execution.error` instead: the worker emits it as an error, then `end`,
   without calling the component.
2. The worker runs the component (`runner.run_process`). For every event the component emits,
   `dialect.publications(execution, kind, payload)` returns the AMQP messages to publish, in
   order; the worker publishes them at once, in emit order on one channel (so one message's events
   keep their order), and awaits their broker confirms together before settling. A dialect that
   turns an event into an error (a failed API call, a message over the size limit) returns the
   error's publications instead and sets `execution.failed`.
3. On the first `end`: `dialect.on_end(execution)` returns any closing publications (OIH:
   "function complete"), the worker publishes them, and once every publication of the message is
   confirmed it settles the delivery: ack, or reject(requeue=False) when `execution.failed` is set.
   Later `end`s are ignored; later emits are still published (each confirmed before `emit` returns).

Around the message loop: `start(component)` runs once before consuming (fetch step data, hooks);
if it raises, the worker publishes `startup_error(exc)` (when there is a broker) and exits 1.
`stop()` runs once after the last message is settled. `amqp is None` means "do not connect at all"
(elastic.io HOOK_SHUTDOWN mode: `start` does all the work and the process exits).

The worker reads `execution.failed` (settlement), `execution.error` and `execution.flow_variables`;
everything under `execution.state` is private to the dialect.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..crypto import MessageCipher, js_json_dumps
from ..js import js_number
from ..logs import get_logger, redact
from ..message import Message
from ..runner import error_payload

log = get_logger("elasticio_sailor.dialects")

HEADER_ROUTING_KEY = "x-eio-routing-key"
HEADER_ERROR_RESPONSE = "x-eio-error-response"  # marks the error sent to reply_to
META_PREFIX = "x-eio-meta-"


class RejectMessage(Exception):
    """The delivery cannot be decoded or decrypted: dead-letter it, publish nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AmqpSettings:
    """What the transport needs to know, in dialect-neutral form (durations in milliseconds)."""

    uri: str
    listen_queue: str
    prefetch: int = 1
    publish_retry_delay: int = 100
    publish_retry_attempts: float = float("inf")
    publish_max_retry_delay: int = 300_000
    reconnect_attempts: int = 3  # at start-up; a dropped connection is retried without limit
    reconnect_timeout: int = 100
    connection_name: str = ""


@dataclass(frozen=True)
class Delivery:
    """One message as consumed, without pika types (`properties` uses pika's attribute names)."""

    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]  # content_type, content_encoding, delivery_mode, expiration, ... (no headers)
    exchange: str = ""
    routing_key: str = ""
    delivery_tag: int = 0
    redelivered: bool = False


@dataclass
class Publication:
    """One AMQP message to publish and confirm. `properties` uses pika's BasicProperties names."""

    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)
    mandatory: bool = True
    kind: str = ""  # the emitted event this came from, for logs


@dataclass
class Execution:
    """One delivery being processed: what the component gets, plus the dialect's private state."""

    delivery: Delivery
    function: str
    message: Message
    cfg: dict[str, Any]
    snapshot: dict[str, Any]
    log_context: dict[str, Any] = field(default_factory=dict)  # threadId, messageId, ... for every log line
    secrets: list[str] = field(default_factory=list)  # values to redact from logs and errors
    flow_variables: dict[str, Any] = field(default_factory=dict)  # the component's get_flow_variables()
    failed: bool = False  # an error was emitted: reject (dead-letter) instead of ack
    # Set by prepare() when the delivery is valid but cannot run (OIH: its secret could not be fetched):
    # the worker does not call the component; it emits this as an error event, then ends.
    error: Any = None
    state: dict[str, Any] = field(default_factory=dict)


class Dialect(Protocol):
    """What the worker needs from a platform dialect. See the module docstring for the call order."""

    name: str
    amqp: AmqpSettings | None  # None: do not connect (start() does everything, then the process exits)
    function: str  # the function run in this process, for start-up logs ("" when it comes per message)
    component_path: str  # the component root (directory holding component.json)
    secrets: list[str]  # process-wide values the log filter masks from the start (API keys, passwords)

    def start(self, component: Any) -> None:
        """Runs once before consuming: fetch step data, run start-up hooks. Raising aborts start-up."""

    def startup_error(self, exc: BaseException) -> list[Publication]:
        """Publications reporting a start-up failure (may be empty)."""

    def prepare(self, delivery: Delivery) -> Execution:
        """Decode one delivery. Raises RejectMessage for an undecodable one."""

    def publications(self, execution: Execution, kind: str, payload: Any) -> list[Publication]:
        """The messages one emitted event becomes (may block, e.g. for an API call or a rate limit)."""

    def on_end(self, execution: Execution) -> list[Publication]:
        """Closing publications on the first `end`, before the delivery is settled."""

    def stop(self) -> None:
        """Runs once at shutdown, after the last delivery is settled."""


class RateLimiter:
    """At most `limit` acquisitions in any `interval_ms` window, shared by all worker threads.

    The Node sailor throttles data, error and snapshot publishes this way (p-throttle); dialects
    call `acquire()` inside `publications()`, which runs on a worker thread, so sleeping is fine.
    """

    def __init__(self, limit: int, interval_ms: int) -> None:
        self.limit = max(1, int(limit))
        self.interval = max(0, interval_ms) / 1000.0
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.interval <= 0:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                while self._times and now - self._times[0] >= self.interval:
                    self._times.popleft()
                if len(self._times) < self.limit:
                    self._times.append(now)
                    return
                wait = self.interval - (now - self._times[0])
            time.sleep(max(wait, 0.0005))


class _UuidSource:
    """UUIDv4 strings from os.urandom read 4 kB at a time.

    Why: ``uuid.uuid4()`` makes one getrandom system call per id, and a system call releases the GIL,
    which under load hands it to another thread and back: two to three ids per message cost more than
    the ids. Same randomness source and format as ``str(uuid.uuid4())`` (built without the UUID
    object, a third of the cost); the buffer is dropped in a forked child so that parent
    and child never share ids.
    """

    CHUNK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._buf, self._pos = b"", 0

    def __call__(self) -> str:
        with self._lock:
            if self._pos >= len(self._buf):
                self._buf, self._pos = os.urandom(self.CHUNK), 0
            raw = bytearray(self._buf[self._pos : self._pos + 16])
            self._pos += 16
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


new_uuid = _UuidSource()


# --- protocol rules both dialects share (the ferryman is a fork of the elastic.io sailor) -------------
def now_ms() -> int:
    return int(time.time() * 1000)


def incoming_protocol_version(headers: Mapping[str, Any]) -> int:
    """``Number(headers.protocolVersion || 1) < 2`` means v1 (base64); anything else (NaN too) v2."""
    version = js_number(headers.get("protocolVersion") or 1)
    return 1 if version < 2 else 2


def format_error(err: Any) -> dict[str, Any]:
    """The sailors' formatError: ``{name, message, stack}`` plus any extra details, in that order."""
    if isinstance(err, BaseException):
        err = error_payload(err)
    if isinstance(err, Mapping) and "message" in err:
        out = {
            "name": err.get("name") or "Error",
            "message": err.get("message"),
            "stack": err.get("stack") or "Not Available",
        }
        out.update((k, v) for k, v in err.items() if k not in out)
        return out
    return {"name": "Error", "message": err or "Not Available", "stack": "Not Available"}


def read_incoming_headers(headers: Mapping[str, Any], step_id: Any, **extra: Any) -> dict[str, Any]:
    """readIncomingMessageHeaders: stepId, x-eio-meta-* (lower-cased), threadId, ids, `extra`, reply_to.

    The dialects differ only in where stepId comes from (E: the header, O: the token) and in O's
    rebound headers, passed as `extra`.
    """
    meta = {k.lower(): v for k, v in headers.items() if k.lower().startswith(META_PREFIX)}
    result: dict[str, Any] = {
        "stepId": step_id,
        **meta,
        "threadId": headers.get("threadId") or meta.get(META_PREFIX + "trace-id"),
        "messageId": headers.get("messageId"),
        "parentMessageId": headers.get("parentMessageId"),
        **extra,
    }
    if not result["threadId"]:
        result["threadId"] = new_uuid()
    if headers.get("reply_to"):
        result["reply_to"] = headers["reply_to"]
    return result


def wire_message(payload: Mapping[str, Any], data: Any, message_id: Any) -> Message:
    """A decoded body as the component's Message; metadata, attachments, headers and passthrough
    that are not objects become {}. The dialects differ in the data key (E `body`, O `data`) and in
    which ids they accept, so those come from the caller."""

    def obj(key: str) -> dict[str, Any]:
        value = payload.get(key)
        return value if isinstance(value, dict) else {}

    return Message(
        data=data if data is not None else {},
        metadata=obj("metadata"),
        attachments=obj("attachments"),
        headers=obj("headers"),
        id=message_id,
        passthrough=obj("passthrough"),
    )


def split_routing_key(body_headers: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The body header x-eio-routing-key (any case) and the body headers without it."""
    routing_key = None
    rest: dict[str, Any] = {}
    for key, value in body_headers.items():
        if str(key).lower() == HEADER_ROUTING_KEY:
            routing_key = value  # the last one wins, as in a lower-cased copy of the object
        else:
            rest[key] = value
    return routing_key, rest


def size_error(body: bytes, limit: int) -> dict[str, Any] | None:
    """OUTGOING_MESSAGE_SIZE_LIMIT, checked on the encrypted bytes: the error to emit instead, or None."""
    if len(body) > limit:
        return {"name": "Error", "message": f"Outgoing message size {len(body)} exceeds limit of {limit}."}
    return None


def next_rebound_iteration(previous: Any) -> int:
    """The incoming reboundIteration + 1 when it is a (non-zero) integer, else 1 (a string resets it)."""
    return previous + 1 if isinstance(previous, int) and not isinstance(previous, bool) and previous else 1


def rebound_expiration(iteration: int, initial_ms: int) -> str:
    """The AMQP `expiration` of a rebound: doubling per iteration, as a string of milliseconds."""
    return str(2 ** (iteration - 1) * initial_ms)


def valid_snapshot_update(payload: Any) -> bool:
    """updateSnapshot takes a plain object without ``$set``; anything else is logged and dropped."""
    if not isinstance(payload, dict):
        log.error("You should pass an object to the `updateSnapshot` event")
        return False
    if "$set" in payload:
        log.warning("ERROR: $set is not supported any more in `updateSnapshot` event")
        return False
    return True


class BaseDialect(ABC):
    """The behaviour both dialects share; a dialect subclasses it and fills in the hooks.

    A dialect must implement `start`, `prepare` (reading its identity, and passing it to
    `_outgoing_headers`), `stop`, `_route` (exchange and routing key per kind), `_data_message` (a data
    event's wire body and headers), `_startup_headers`, `_rebound`, `_update_keys` and
    `_remember_snapshot`; it may override `_decode` (the body's bytes as a payload), `on_end` and
    `_snapshot_headers`.
    """

    name: str
    function: str
    component_path: str
    amqp: AmqpSettings | None
    cipher: MessageCipher
    throttles: dict[str, RateLimiter]
    additional_headers: dict[str, str]
    protocol_version: int  # of outgoing data
    outgoing_size_limit: int
    persistent: bool  # deliveryMode 2 on every publish
    secrets: list[str]  # process-wide values to redact (API keys, passwords)
    error_replies: bool = False  # an error is also sent to the input's reply_to
    checks_reply_size: bool = True  # an httpReply over the size limit becomes an error
    drops_empty_headers: bool = False  # headers whose value is None are left out

    @staticmethod
    def _make_throttles(data: int, error: int, snapshot: int, interval_ms: int) -> dict[str, RateLimiter]:
        """The Node runtimes throttle data, error and snapshot publishes, each on its own."""
        return {
            "data": RateLimiter(data, interval_ms),
            "error": RateLimiter(error, interval_ms),
            "snapshot": RateLimiter(snapshot, interval_ms),
        }

    # --- hooks -----------------------------------------------------------------------------------
    @abstractmethod
    def start(self, component: Any) -> None:
        """Runs once before consuming: fetch step data, run start-up hooks. Raising aborts start-up."""

    @abstractmethod
    def prepare(self, delivery: Delivery) -> Execution:
        """Decode one delivery (see `_decode_delivery`). Raises RejectMessage for an undecodable one."""

    def _decode(self, delivery: Delivery, version: int) -> Any:
        return self.cipher.decrypt(delivery.body, version)

    @abstractmethod
    def _route(self, kind: str, execution: Execution | None) -> tuple[str, str]:
        """(exchange, routing key) of "data" (its default), "error", "rebound", "snapshot" and "reply"
        (the exchange replies go to; the key is the input's reply_to)."""

    @abstractmethod
    def _data_message(
        self, execution: Execution, msg: Message
    ) -> tuple[dict[str, Any], dict[str, Any], list[Publication]]:
        """A data event's wire body, its AMQP headers, and what is published before it."""

    @abstractmethod
    def _startup_headers(self) -> dict[str, Any]:
        """The headers of a start-up error, which has no delivery."""

    @abstractmethod
    def _rebound(self, execution: Execution, payload: Any) -> list[Publication]:
        """Send the input again later, or the error "Rebound limit exceeded"."""

    @abstractmethod
    def _update_keys(self, execution: Execution, payload: Any) -> list[Publication]:
        """The component's refreshed credentials (elastic.io stores them through its API)."""

    @abstractmethod
    def _remember_snapshot(self, payload: Any, replace: bool) -> None:
        """Keep an emitted snapshot (`replace`) or update (merge) for the next message, if the dialect
        serves it itself."""

    def _snapshot_headers(self, execution: Execution, event: str) -> dict[str, Any]:
        return {}

    # --- lifecycle -------------------------------------------------------------------------------
    def startup_error(self, exc: BaseException) -> list[Publication]:
        """reportError: an error without errorInput, with headers built from the environment."""
        return self._error_publications(exc, self._clean(self._startup_headers()), None, self.secrets)

    def on_end(self, execution: Execution) -> list[Publication]:
        return []

    @abstractmethod
    def stop(self) -> None:
        """Runs once at shutdown, after the last delivery is settled."""

    # --- incoming --------------------------------------------------------------------------------
    def _decode_delivery(self, delivery: Delivery) -> tuple[dict[str, Any], int]:
        """The delivery's body as an object and its protocol version; RejectMessage when it is none.

        The body's `headers` is always an object, and carries the AMQP reply_to (the component reads
        it there)."""
        headers = delivery.headers or {}
        version = incoming_protocol_version(headers)
        if not delivery.body:
            raise RejectMessage("empty body")
        try:
            payload = self._decode(delivery, version)
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
        return payload, version

    def _outgoing_headers(self, incoming: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
        """The headers every publication of one delivery starts from: the incoming ones, the additional
        variables, the new message's ids, the sender's identity, and when processing started."""
        return self._clean(
            {
                **incoming,
                **self.additional_headers,
                "parentMessageId": incoming.get("messageId"),
                "threadId": incoming.get("threadId"),
                "messageId": new_uuid(),
                **identity,
                "start": now_ms(),
            }
        )

    def _log_context(self, incoming: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any]:
        return self._clean(
            {
                "threadId": incoming.get("threadId"),
                "messageId": incoming.get("messageId"),
                "parentMessageId": incoming.get("parentMessageId"),
                **ids,
            }
        )

    # --- outgoing --------------------------------------------------------------------------------
    def publications(self, execution: Execution, kind: str, payload: Any) -> list[Publication]:
        handler = {
            "data": self._data,
            "error": self._fail,
            "rebound": self._rebound,
            "snapshot": self._snapshot,
            "updateSnapshot": self._update_snapshot,
            "updateKeys": self._update_keys,
            "httpReply": self._http_reply,
        }.get(kind)
        return handler(execution, payload) if handler is not None else []

    def _clean(self, headers: dict[str, Any]) -> dict[str, Any]:
        if self.drops_empty_headers:
            return {k: v for k, v in headers.items() if v is not None}
        return headers

    def _properties(self, **extra: Any) -> dict[str, Any]:
        return {
            "content_type": "application/json",
            "content_encoding": "utf8",
            "delivery_mode": 2 if self.persistent else 1,
            **extra,
        }

    def _headers(self, execution: Execution, **extra: Any) -> dict[str, Any]:
        headers = self._clean({**execution.state["outgoing"], **extra})
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

    def _error_publications(
        self,
        err: Any,
        headers: dict[str, Any],
        original: Delivery | None,
        secrets: list[str],
        reply_first: bool = False,
    ) -> list[Publication]:
        """sendError: ``{error, errorInput}`` to the error key, and (`error_replies`) the bare error to
        reply_to. `error` is the redacted ``{name, message, stack, ...}`` encrypted as v1 (base64);
        `errorInput` a v1 input as received, or a v2 input decrypted and re-encrypted as v1.

        The Node sailor awaits the error throttle before its error publish but not before the reply,
        so a throttled error (an emitted one) reaches reply_to first; `reply_first` keeps that order.
        """
        encrypted_error = self.cipher.encrypt(redact(format_error(err), secrets), 1).decode("utf-8")
        body: dict[str, Any] = {"error": encrypted_error}
        if original is not None and original.body:
            if incoming_protocol_version(original.headers or {}) >= 2:
                try:
                    body["errorInput"] = self.cipher.encrypt(
                        self.cipher.decrypt(original.body, 2), 1
                    ).decode()
                except Exception as exc:  # the input was decoded once; never lose the error over it
                    log.warning("cannot re-encrypt the error input: %s", type(exc).__name__)
            else:
                body["errorInput"] = original.body.decode("utf-8", "replace")
        headers = {**headers}
        headers.setdefault("messageId", new_uuid())
        exchange, routing_key = self._route("error", None)
        pubs = [
            Publication(
                exchange, routing_key, js_json_dumps(body).encode(), headers, self._properties(), kind="error"
            )
        ]
        reply_to = headers.get("reply_to")
        if reply_to and self.error_replies:
            reply = Publication(
                self._route("reply", None)[0],
                str(reply_to),
                encrypted_error.encode("utf-8"),
                {**headers, HEADER_ERROR_RESPONSE: True},
                self._properties(),
                kind="error reply",
            )
            pubs.insert(0 if reply_first else 1, reply)
        return pubs

    def _data(self, execution: Execution, payload: Any) -> list[Publication]:
        """A data event: the dialect's body, routed by the body header x-eio-routing-key when set,
        encrypted; over OUTGOING_MESSAGE_SIZE_LIMIT it becomes an error."""
        msg = payload if isinstance(payload, Message) else Message.from_any(payload)
        body, headers, pubs = self._data_message(execution, msg)
        body_headers = body.get("headers") if isinstance(body.get("headers"), dict) else {}
        routing_key, body["headers"] = split_routing_key(body_headers)
        exchange, default_key = self._route("data", execution)
        headers["protocolVersion"] = self.protocol_version
        encrypted = self.cipher.encrypt(body, 1 if self.protocol_version < 2 else 2)
        too_big = size_error(encrypted, self.outgoing_size_limit)
        if too_big:
            return pubs + self._fail(execution, too_big)
        self.throttles["data"].acquire()
        data = Publication(
            exchange, str(routing_key or default_key), encrypted, headers, self._properties(), kind="data"
        )
        return [*pubs, data]

    def _http_reply(self, execution: Execution, payload: Any) -> list[Publication]:
        """httpReply: the reply, encrypted as v1, to the input's reply_to (an error without one)."""
        headers = self._headers(execution)
        routing_key = headers.get("reply_to")
        if not routing_key:
            message = "Component emitted 'httpReply' event but 'reply_to' was not found in AMQP headers"
            return self._fail(execution, {"name": "Error", "message": message})
        reply = {k: v for k, v in dict(payload or {}).items() if k != "passedCfg"}
        _, reply["headers"] = split_routing_key(reply.get("headers") or {})
        headers["protocolVersion"] = 1
        body = self.cipher.encrypt(reply, 1)
        too_big = size_error(body, self.outgoing_size_limit) if self.checks_reply_size else None
        if too_big:
            return self._fail(execution, too_big)
        exchange = self._route("reply", execution)[0]
        return [Publication(exchange, str(routing_key), body, headers, self._properties(), kind="httpReply")]

    def _snapshot(self, execution: Execution, payload: Any) -> list[Publication]:
        self._remember_snapshot(payload, replace=True)
        self.throttles["snapshot"].acquire()
        return [self._snapshot_publication(execution, payload, "snapshot")]

    def _update_snapshot(self, execution: Execution, payload: Any) -> list[Publication]:
        if not valid_snapshot_update(payload):
            return []
        self._remember_snapshot(payload, replace=False)
        return [self._snapshot_publication(execution, payload, "updateSnapshot")]

    def _snapshot_publication(self, execution: Execution, data: Any, event: str) -> Publication:
        exchange, routing_key = self._route("snapshot", execution)
        headers = self._headers(execution, snapshotEvent=event, **self._snapshot_headers(execution, event))
        return Publication(
            exchange,
            routing_key,
            js_json_dumps(data).encode("utf-8"),
            headers,
            self._properties(),
            kind=event,
        )
