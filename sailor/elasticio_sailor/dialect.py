"""The seam between the AMQP worker and a platform dialect (elastic.io, OIH ferryman).

Why a seam: the two platforms share the transport (one queue in, confirmed publishes out, ack or
dead-letter) but differ in everything the bytes mean: how a delivery is decoded, where cfg and the
snapshot come from, which exchange and routing key each emitted event goes to, with which headers
and body. The worker (`worker.py`, `amqp.py`) owns only the transport: connection, reconnection,
threads, publisher confirms, settlement, shutdown. A dialect owns only the meaning, and never
touches pika. Adding a dialect (H6: OIH) means one new module implementing `Dialect` plus one
branch in `settings.select_dialect`; the worker core does not change.

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
   order; the worker publishes each one and waits for its broker confirm before `emit` returns
   (so one message's events keep their order). A dialect that turns an event into an error (a
   failed API call, a message over the size limit) returns the error's publications instead and
   sets `execution.failed`.
3. On the first `end`: `dialect.on_end(execution)` returns any closing publications (OIH:
   "function complete"), the worker publishes them, then settles the delivery: ack, or
   reject(requeue=False) when `execution.failed` is set. Later `end`s are ignored; later emits are
   still published.

Around the message loop: `start(component)` runs once before consuming (fetch step data, hooks);
if it raises, the worker publishes `startup_error(exc)` (when there is a broker) and exits 1.
`stop()` runs once after the last message is settled. `amqp is None` means "do not connect at all"
(elastic.io HOOK_SHUTDOWN mode: `start` does all the work and the process exits).

`execution.failed` is the only settlement signal the worker reads. Everything under
`execution.state` is private to the dialect.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .logs import get_logger, redact
from .message import Message
from .runner import error_payload

if TYPE_CHECKING:  # pragma: no cover
    from .crypto import MessageCipher

log = get_logger("elasticio_sailor.dialect")

HEADER_ROUTING_KEY = "x-eio-routing-key"
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
    persistent_messages: bool = False  # deliveryMode 2 on every publish when true
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
    message_id: str | None = None  # incoming `messageId` header (not unique: never used to spot redeliveries)
    log_context: dict[str, Any] = field(default_factory=dict)  # threadId, messageId, ... for every log line
    secrets: list[str] = field(default_factory=list)  # values to redact from logs and errors
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


def js_number(value: Any) -> float:
    """JavaScript ``Number(value)`` for the header types pika hands us."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            return float(int(text, 0)) if text[:2].lower() in ("0x", "0o", "0b") else float(text)
        except ValueError:
            return math.nan
    return math.nan


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


def error_body(
    cipher: MessageCipher, err: Any, original: Delivery | None, secrets: list[str]
) -> tuple[dict[str, Any], str]:
    """sendError's ``{error, errorInput}`` and the encrypted error text (also the error reply's body).

    `error` is the redacted ``{name, message, stack, ...}`` encrypted as v1 (base64); `errorInput` is
    a v1 input as received, or a v2 input decrypted and re-encrypted as v1.
    """
    encrypted_error = cipher.encrypt(redact(format_error(err), secrets), 1).decode("utf-8")
    body: dict[str, Any] = {"error": encrypted_error}
    if original is not None and original.body:
        if incoming_protocol_version(original.headers or {}) >= 2:
            try:
                body["errorInput"] = cipher.encrypt(cipher.decrypt(original.body, 2), 1).decode("utf-8")
            except Exception as exc:  # the input was decoded once; never lose the error over it
                log.warning("cannot re-encrypt the error input: %s", type(exc).__name__)
        else:
            body["errorInput"] = original.body.decode("utf-8", "replace")
    return body, encrypted_error


def valid_snapshot_update(payload: Any) -> bool:
    """updateSnapshot takes a plain object without ``$set``; anything else is logged and dropped."""
    if not isinstance(payload, dict):
        log.error("You should pass an object to the `updateSnapshot` event")
        return False
    if "$set" in payload:
        log.warning("ERROR: $set is not supported any more in `updateSnapshot` event")
        return False
    return True
