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

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from .message import Message


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
    message_id: str | None = None  # incoming `messageId` header: identifies a redelivery of the same message
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
