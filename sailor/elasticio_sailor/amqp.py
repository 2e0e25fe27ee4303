"""The AMQP transport of the worker: one pika SelectConnection driven by one I/O thread.

Design, and why:
- pika objects are not thread-safe, so exactly one thread (``sailor-amqp-io``) ever touches the
  connection and its channels. It runs pika's own select IOLoop, which also sends and checks
  heartbeats, so heartbeats never depend on how long a component takes.
- Other threads talk to it only through ``IOLoop.add_callback_threadsafe`` (the one thread-safe
  entry point pika has) and get a ``Completion`` back: ``publish``'s resolves when the broker
  confirms the message (publisher confirms on a dedicated channel, many in flight at once, matched
  by delivery tag, ``multiple`` honoured), ``settle``'s when the ack/reject is written.
- The asynchronous adapter was chosen over BlockingConnection because a blocking confirm channel
  waits for each confirm in turn on the I/O thread, serialising all workers' publishes; here
  publishes from all worker threads are pipelined and each waits only for its own confirm.
- A dropped connection (broker restart, ``rabbitmqctl close_connection``, missed heartbeats) fails
  every unconfirmed publish with ``ConnectionLost`` and every later settle of a delivery from that
  connection with ``StaleDelivery``; the transport then reconnects with exponential backoff,
  without limit, and resumes consuming. Deliveries carry a ``DeliveryRef`` with the connection
  generation, so an ack never goes to the wrong channel. Whatever was not acked before the drop is
  redelivered by the broker: at least once, never lost.
- One connection with two channels (consume, confirm-publish): a channel error closes the whole
  connection and goes through the same reconnect path, so there is a single recovery mechanism.
- Reconnection is one state machine (see "connection lifecycle" below): one connection attempt or
  one reconnect timer at a time, and callbacks of an abandoned attempt are ignored.
- pika 1.4 can raise out of its own loop: a connection reset right after the TCP handshake makes
  its connection workflow raise ``ValueError("Expected connected socket, but getpeername()
  failed")``. The I/O thread catches what escapes the loop, closes that attempt (which also cancels
  its stack_timeout) and reconnects; after MAX_LOOP_ERRORS in a row it ends, `failed` turns true and
  the worker's watchdog exits the process. `last_tick` lets the watchdog see a stuck loop.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.select_connection import IOLoop, SelectConnection

from .dialects.base import AmqpSettings, Delivery, Publication
from .logs import get_logger

log = get_logger("elasticio_sailor.amqp")

MAX_RECONNECT_DELAY = 10.0  # seconds; a dropped connection is retried forever, at most this far apart
MAX_LOOP_ERRORS = 20  # exceptions out of pika in a row (no connect outcome between): the I/O thread gives up
ABANDON_TIMEOUT = 5.0  # seconds an abandoned connection may take to close before we reconnect anyway
TICK_INTERVAL = 1.0  # seconds between two proofs of life of the I/O loop (`last_tick`)
_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)


class TransportError(Exception):
    """Base of the transport's failures."""


class ConnectionLost(TransportError):
    """The connection (or channel) went away before the operation completed; retry after reconnect."""


class PublishNacked(TransportError):
    """The broker refused a publish (basic.nack)."""


class StaleDelivery(TransportError):
    """The delivery came over a connection that is gone: it cannot be settled any more."""


class StartupFailed(TransportError):
    """The first connection or the consumer could not be set up."""


def describe(reason: Any) -> str:
    """One line saying why a connection attempt failed, from pika's nested exceptions.

    pika wraps the cause several times (AMQPConnectionError around AMQPConnectionWorkflowFailed around
    an AMQPConnector...Error around, say, ConnectionRefusedError), and the outer ones print as "": the
    innermost cause is what an operator needs.
    """
    from pika.adapters.utils import connection_workflow as workflow

    for _ in range(10):
        if isinstance(reason, workflow.AMQPConnectionWorkflowFailed) and reason.exceptions:
            reason = reason.exceptions[-1]
        elif isinstance(reason, workflow.AMQPConnectorPhaseErrorBase) and reason.exception is not None:
            reason = reason.exception
        elif (
            type(reason) is pika.exceptions.AMQPConnectionError
            and reason.args
            and isinstance(reason.args[0], BaseException)
        ):
            reason = reason.args[0]
        else:
            break
    if not isinstance(reason, BaseException):
        return str(reason) or "no reason given"
    name = type(reason).__name__
    lines = (str(reason) or repr(reason)).splitlines()
    text = lines[0] if lines else ""
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


class _PikaLogGate(logging.Handler):
    """pika's own warning and error lines: the first one of each connection attempt, as one line.

    pika logs a failed connect five or six times over (with stack traces) on its way up; our own
    warning says why and what happens next. Installed on the ``pika`` logger, which then stops
    propagating; what passes goes to the root handlers. At LOG_LEVEL=trace everything passes.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._passed = False

    def new_attempt(self) -> None:
        self._passed = False

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if record.levelno >= logging.WARNING and root.level > 5:
            if self._passed:
                return
            self._passed = True
            message = record.getMessage().splitlines()
            record.msg, record.args = (message[0] if message else "").rstrip("; "), None
            record.exc_info = record.exc_text = record.stack_info = None
        root.handle(record)


_PIKA_LOG_GATE = _PikaLogGate()


def limit_pika_logs() -> None:
    """Route pika's log lines through `_PikaLogGate` (idempotent)."""
    pika_log = logging.getLogger("pika")
    if _PIKA_LOG_GATE not in pika_log.handlers:
        pika_log.addHandler(_PIKA_LOG_GATE)
        pika_log.propagate = False


class Completion:
    """The outcome of one publish or settle: a one-shot, thread-safe result, resolved once.

    Why not ``concurrent.futures.Future``: a worker waits for one of these per published event, and
    Future's Condition costs a woken waiter up to two lock hand-offs (the waiter lock, then the
    Condition's own lock, which the resolving thread still holds), each a futex round trip and a GIL
    hand-off. Here the waiter blocks on a lock that is held while pending and released once, by the
    resolving thread: one wake-up. The subset of Future's API the sailor uses is kept.
    """

    __slots__ = ("_callbacks", "_done", "_exc", "_latch", "_mutex")

    def __init__(self) -> None:
        self._latch = threading.Lock()
        self._latch.acquire()  # released when resolved
        self._mutex = threading.Lock()  # guards _done/_callbacks between resolver and add_done_callback
        self._done = False
        self._exc: BaseException | None = None
        self._callbacks: list[Callable[[Completion], None]] = []

    def done(self) -> bool:
        return self._done

    def set_result(self, _result: None = None) -> None:
        self._resolve(None)

    def set_exception(self, exc: BaseException) -> None:
        self._resolve(exc)

    def _resolve(self, exc: BaseException | None) -> None:
        with self._mutex:
            if self._done:
                return
            self._exc = exc
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        self._latch.release()
        for fn in callbacks:
            try:
                fn(self)
            except Exception as cb_exc:
                log.error("completion callback failed: %s", cb_exc, exc_info=True)

    def _wait(self, timeout: float | None) -> None:
        if self._done:
            return
        if not self._latch.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            raise FutureTimeout()
        self._latch.release()  # stays released: every later wait returns at once

    def result(self, timeout: float | None = None) -> None:
        """Wait until resolved; raise its exception, or concurrent.futures.TimeoutError."""
        self._wait(timeout)
        if self._exc is not None:
            raise self._exc

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        return self._exc

    def add_done_callback(self, fn: Callable[[Completion], None]) -> None:
        """Run `fn(self)` once resolved, on the resolving thread (at once if already resolved)."""
        with self._mutex:
            if not self._done:
                self._callbacks.append(fn)
                return
        fn(self)


@dataclass(frozen=True)
class DeliveryRef:
    """Which connection a delivery came over, and its tag there."""

    generation: int
    delivery_tag: int


DeliveryHandler = Callable[[DeliveryRef, Delivery], None]


def _clean_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """Headers as amqplib sends them: undefined (None) values dropped."""
    return {str(k): v for k, v in headers.items() if v is not None}


def publication_properties(pub: Publication) -> pika.BasicProperties:
    props = {k: v for k, v in pub.properties.items() if k in _PROPERTY_NAMES and v is not None}
    return pika.BasicProperties(headers=_clean_headers(pub.headers), **props)


def delivery_from(method: Any, properties: pika.BasicProperties, body: bytes) -> Delivery:
    props = {
        name: getattr(properties, name)
        for name in _PROPERTY_NAMES
        if getattr(properties, name, None) is not None
    }
    return Delivery(
        body=body,
        headers=dict(properties.headers or {}),
        properties=props,
        exchange=method.exchange or "",
        routing_key=method.routing_key or "",
        delivery_tag=method.delivery_tag,
        redelivered=bool(method.redelivered),
    )


class AmqpTransport:
    """See the module docstring. Public methods are thread-safe; `_io*` methods run on the I/O thread."""

    def __init__(
        self,
        settings: AmqpSettings,
        on_delivery: DeliveryHandler,
        max_reconnect_delay: float = MAX_RECONNECT_DELAY,
    ) -> None:
        self.settings = settings
        self.max_reconnect_delay = max_reconnect_delay
        self._on_delivery = on_delivery
        self._params = pika.URLParameters(settings.uri)
        limit_pika_logs()
        self._params.client_properties = {
            "connection_name": settings.connection_name or f"{socket.gethostname()}-sailor-py",
            "product": "elasticio-sailor-py",
        }
        self._ioloop = IOLoop()
        self._calls: deque[tuple[Callable[[], None], Completion | None]] = deque()
        self._calls_lock = threading.Lock()
        self._wake_scheduled = False
        self._thread = threading.Thread(target=self._io_run, name="sailor-amqp-io", daemon=True)
        self._ready = threading.Event()  # connection and both channels open
        self._stopped = threading.Event()  # the I/O loop has ended
        self._startup_error: BaseException | None = None
        self._ever_ready = False
        self._closing = False
        self._attempt = 0
        self._loop_errors = 0  # exceptions out of the I/O loop since the last normal connect outcome
        self.generation = 0  # of the current connection attempt; deliveries and callbacks carry theirs
        self.failure: BaseException | None = None  # why the I/O thread ended, when it was not asked to
        self.last_tick = time.monotonic()  # the I/O loop's last turn of `_io_tick`
        # I/O-thread state
        self._connection: SelectConnection | None = None  # the one attempt in progress or open
        self._retry_timer: Any = None  # the one reconnect scheduled
        self._abandoned_for: BaseException | None = None  # why the closing connection was abandoned
        self._consuming = False  # consume-ok received on the current connection
        self._consume_ch: Any = None
        self._publish_ch: Any = None
        self._publish_seq = 0
        self._pending: dict[int, tuple[Completion, Publication]] = {}
        self._want_consume = False
        self._consumer_tag: str | None = None
        self._consume_started: Completion | None = None

    # --- public, any thread ------------------------------------------------------------------
    def connect(self, timeout: float = 60.0) -> None:
        """Start the I/O thread and wait for the first connection (start-up attempts as the Node sailor)."""
        self._thread.start()
        waited = 0.0
        while not self._ready.wait(0.1):
            waited += 0.1
            if self._startup_error is not None:
                raise StartupFailed(str(self._startup_error)) from self._startup_error
            if waited >= timeout:
                raise StartupFailed(f"no AMQP connection after {timeout:.0f}s")

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def consuming(self) -> bool:
        """Connected, and the broker confirmed our consumer on this connection."""
        return self._ready.is_set() and self._consuming

    @property
    def wants_to_consume(self) -> bool:
        return self._want_consume

    @property
    def failed(self) -> bool:
        """The I/O thread ended without `close()`: nothing will be consumed or published any more."""
        return self._thread.ident is not None and not self._thread.is_alive() and not self._closing

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def consume(self, timeout: float = 30.0) -> None:
        """Start consuming the listen queue (and again after every reconnect); waits for consume-ok."""
        future = Completion()
        self._call(lambda: self._io_start_consume(future), future)
        future.result(timeout)

    def stop_consuming(self, timeout: float = 30.0) -> None:
        """Cancel the consumer; deliveries already received are still handed over and can be settled."""
        future = Completion()
        self._call(lambda: self._io_stop_consume(future), future)
        try:
            future.result(timeout)
        except Exception as exc:
            log.warning("cancelling the consumer failed: %s", exc)

    def publish(self, pub: Publication) -> Completion:
        """Publish on the confirm channel; the future resolves on the broker's ack."""
        future = Completion()
        self._call(lambda: self._io_publish(pub, future), future)
        return future

    def settle(self, ref: DeliveryRef, ack: bool) -> Completion:
        """Ack, or reject without requeue, a delivery; StaleDelivery if its connection is gone."""
        future = Completion()
        self._call(lambda: self._io_settle(ref, ack, future), future)
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Close the connection and end the I/O thread."""
        if not self._thread.is_alive():
            return
        self._call(self._io_close)
        self._stopped.wait(timeout)
        self._thread.join(timeout)

    def _call(self, fn: Callable[[], None], future: Completion | None = None) -> None:
        """Run `fn` on the I/O thread: at once when called there (e.g. a settle from a confirm's
        done-callback: no wake-up, no hand-over), else queued and the loop woken once per batch."""
        if threading.get_ident() == self._thread.ident and not self._stopped.is_set():
            try:
                fn()
            except Exception as exc:  # as in _io_drain_calls: the caller's pika callback must go on
                log.error("AMQP I/O call failed: %s", exc, exc_info=True)
            return
        with self._calls_lock:
            stopped = self._stopped.is_set()
            if not stopped:
                self._calls.append((fn, future))
                if self._wake_scheduled:
                    return
                self._wake_scheduled = True
        if stopped:  # outside the lock: done-callbacks may call back into the transport
            if future is not None:
                future.set_exception(ConnectionLost("the AMQP transport is closed"))
            return
        self._ioloop.add_callback_threadsafe(self._io_drain_calls)

    def _io_drain_calls(self) -> None:
        """Run the queued cross-thread calls. One wake-up serves a whole batch: under load this saves
        a socket write and an I/O-loop turn per call, each of which may wait for the GIL."""
        while True:
            with self._calls_lock:
                if not self._calls:
                    self._wake_scheduled = False
                    return
                batch = list(self._calls)
                self._calls.clear()
            for fn, _future in batch:
                try:
                    fn()
                except Exception as exc:  # a failing call must not take the others (or the loop) down
                    log.error("AMQP I/O call failed: %s", exc, exc_info=True)

    # --- I/O thread: connection lifecycle ---------------------------------------------------------
    # One state machine: at most one connection object exists (`_connection`, opening or open), or one
    # reconnect timer is pending (`_retry_timer`), never both. Every pika callback names the connection
    # (or, for channels, the generation) it belongs to; one from an abandoned attempt is ignored, so a
    # late stack_timeout or close of an old attempt can neither start a second chain nor touch the new one.
    def _io_run(self) -> None:
        try:
            self._io_connect()
            self._io_tick()
            while True:
                try:
                    self._ioloop.start()
                    return  # stopped on purpose: close(), or start-up gave up
                except Exception as exc:  # raised out of one of pika's callbacks (its getpeername race)
                    self._loop_errors += 1
                    if self._loop_errors > MAX_LOOP_ERRORS:
                        raise
                    log.error("AMQP I/O loop error, abandoning this connection attempt: %s", describe(exc))
                    log.debug("AMQP I/O loop error", exc_info=exc)
                    self._io_abandon(exc)
        except BaseException as exc:  # the loop itself died: nothing can be published any more
            log.critical("AMQP I/O loop failed: %s", describe(exc), exc_info=True)
            self._startup_error = self.failure = exc
        finally:
            self._ready.clear()
            self._fail_pending(ConnectionLost("the AMQP transport stopped"))
            with self._calls_lock:  # calls queued after the loop ended would never run: fail their futures
                self._stopped.set()
                left, self._calls = list(self._calls), deque()
            for _fn, future in left:
                if future is not None and not future.done():
                    future.set_exception(ConnectionLost("the AMQP transport stopped"))

    def _io_tick(self) -> None:
        """Proves to the watchdog (worker.py) that the I/O loop still turns."""
        self.last_tick = time.monotonic()
        self._ioloop.call_later(TICK_INTERVAL, self._io_tick)

    def _io_connect(self) -> None:
        self._retry_timer = None
        if self._closing:
            self._ioloop.stop()
            return
        if self._connection is not None:  # never a second connection while one is opening or open
            log.debug("AMQP connect skipped: connection %d is still there", self.generation)
            return
        self.generation += 1
        _PIKA_LOG_GATE.new_attempt()
        log.debug("connecting to AMQP (attempt %d)", self._attempt + 1)
        self._connection = SelectConnection(
            parameters=self._params,
            on_open_callback=self._io_on_open,
            on_open_error_callback=self._io_on_open_error,
            on_close_callback=self._io_on_closed,
            custom_ioloop=self._ioloop,
        )

    def _io_retry_later(self, reason: Any) -> None:
        if self._retry_timer is not None:  # one reconnect chain only
            self._ioloop.remove_timeout(self._retry_timer)
            self._retry_timer = None
        if self._closing:
            self._ioloop.stop()
            return
        self._attempt += 1
        if not self._ever_ready and self._attempt > max(0, self.settings.reconnect_attempts):
            self._startup_error = StartupFailed(f"cannot connect to AMQP: {describe(reason)}")
            log.error("AMQP connection failed %d times, giving up: %s", self._attempt, describe(reason))
            self._ioloop.stop()
            return
        base = max(self.settings.reconnect_timeout, 1) / 1000.0
        delay = min(base * 2 ** min(self._attempt - 1, 30), self.max_reconnect_delay)
        log.warning(
            "AMQP connection lost or refused (%s); reconnecting in %.3fs (attempt %d)",
            describe(reason),
            delay,
            self._attempt,
        )
        self._retry_timer = self._ioloop.call_later(delay, self._io_connect)

    def _io_is_current(self, connection: Any, what: str) -> bool:
        if connection is self._connection:
            return True
        log.debug("ignoring %s of an abandoned AMQP connection attempt", what)
        return False

    def _io_on_open_error(self, connection: Any, error: BaseException) -> None:
        if not self._io_is_current(connection, "an open error"):
            return
        self._connection = None
        self._loop_errors = 0
        self._io_retry_later(self._take_abandon_reason(error))

    def _io_on_open(self, connection: SelectConnection) -> None:
        if not self._io_is_current(connection, "an open"):
            connection.close()  # cannot happen by design; if it did, it must not stay open beside ours
            return
        self._loop_errors = 0
        self._consume_ch = self._publish_ch = None
        generation = self.generation
        connection.channel(on_open_callback=lambda ch: self._io_on_consume_channel(generation, ch))
        connection.channel(on_open_callback=lambda ch: self._io_on_publish_channel(generation, ch))

    def _io_on_consume_channel(self, generation: int, channel: Any) -> None:
        if generation != self.generation:
            return
        channel.add_on_close_callback(lambda ch, reason: self._io_on_channel_closed(generation, ch, reason))
        channel.add_on_cancel_callback(lambda frame: self._io_on_consumer_cancelled(generation, frame))
        channel.basic_qos(
            prefetch_count=max(1, self.settings.prefetch),
            callback=lambda _frame: self._io_channel_ready(generation, "consume", channel),
        )

    def _io_on_publish_channel(self, generation: int, channel: Any) -> None:
        if generation != self.generation:
            return
        channel.add_on_close_callback(lambda ch, reason: self._io_on_channel_closed(generation, ch, reason))
        channel.add_on_return_callback(self._io_on_return)
        self._publish_seq = 0
        channel.confirm_delivery(
            ack_nack_callback=lambda frame: self._io_on_confirm(generation, frame),
            callback=lambda _frame: self._io_channel_ready(generation, "publish", channel),
        )

    def _io_channel_ready(self, generation: int, which: str, channel: Any) -> None:
        if generation != self.generation:
            return
        if which == "consume":
            self._consume_ch = channel
        else:
            self._publish_ch = channel
        if self._consume_ch is None or self._publish_ch is None:
            return
        if self._attempt:
            log.info("AMQP connection re-established")
        self._attempt = 0
        self._ever_ready = True
        self._ready.set()
        if self._want_consume:
            self._io_basic_consume()

    def _io_on_channel_closed(self, generation: int, channel: Any, reason: BaseException) -> None:
        """A channel closed under us (e.g. a 404/406 from the broker): reset via the connection."""
        if generation != self.generation:
            return
        self._ready.clear()
        self._fail_pending(ConnectionLost(f"channel closed: {reason}"))
        self._fail_consume_start(reason)
        if channel is self._consume_ch:
            self._consume_ch = None
            self._consumer_tag = None
            self._consuming = False
        if channel is self._publish_ch:
            self._publish_ch = None
        if self._closing:
            return
        log.warning("AMQP channel closed: %s", describe(reason))
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _io_on_closed(self, connection: Any, reason: BaseException) -> None:
        if not self._io_is_current(connection, "a close"):
            return
        self._connection = None
        reason = self._take_abandon_reason(reason)
        self._io_teardown(f"connection closed: {describe(reason)}")
        if self._closing:
            self._ioloop.stop()
            return
        self._io_retry_later(reason)

    def _take_abandon_reason(self, reason: Any) -> Any:
        abandoned_for, self._abandoned_for = self._abandoned_for, None
        return abandoned_for if abandoned_for is not None else reason

    def _io_abandon(self, exc: BaseException) -> None:
        """After an exception out of pika: close the current attempt for good, then reconnect.

        The reconnect waits for that close (its on-close or open-error callback takes the normal path),
        so that two connections never overlap; if the broken attempt never calls back, it is dropped
        after ABANDON_TIMEOUT.
        """
        connection = self._connection
        self._abandoned_for = exc  # the reason its close reports is our own close
        self.generation += 1  # its channels' callbacks (and deliveries) are stale from now on
        self._io_teardown(f"connection abandoned: {describe(exc)}")
        if connection is not None and not connection.is_closed:
            try:  # also aborts its connection workflow (cancels its stack_timeout, closes its socket)
                connection.close()
            except Exception as close_exc:
                log.debug("closing the abandoned AMQP connection failed: %s", describe(close_exc))
        if connection is None or connection.is_closed:
            self._connection = None
            self._io_retry_later(self._take_abandon_reason(exc))
            return

        def give_up_waiting() -> None:
            if self._connection is connection:
                log.warning("the abandoned AMQP connection did not close; reconnecting anyway")
                self._connection = None
                self._io_retry_later(self._take_abandon_reason(exc))

        self._ioloop.call_later(ABANDON_TIMEOUT, give_up_waiting)

    def _io_teardown(self, reason: str) -> None:
        self._ready.clear()
        self._consume_ch = self._publish_ch = None
        self._consumer_tag = None
        self._consuming = False
        self._fail_pending(ConnectionLost(reason))

    def _fail_consume_start(self, reason: Any) -> None:
        if self._consume_started is not None and not self._consume_started.done():
            self._consume_started.set_exception(ConnectionLost(f"cannot consume: {describe(reason)}"))

    def _io_close(self) -> None:
        self._closing = True
        self._want_consume = False
        if self._retry_timer is not None:
            self._ioloop.remove_timeout(self._retry_timer)
            self._retry_timer = None
        if self._connection is not None and (self._connection.is_open or self._connection.is_opening):
            self._connection.close()
        else:
            self._ioloop.stop()

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future, _pub in pending.values():
            if not future.done():
                future.set_exception(exc)

    # --- I/O thread: consuming --------------------------------------------------------------------
    def _io_start_consume(self, future: Completion) -> None:
        self._want_consume = True
        self._consume_started = future
        if self._ready.is_set() and self._consumer_tag is None:
            self._io_basic_consume()
        elif self._consumer_tag is not None:
            future.set_result(self._consumer_tag)

    def _io_basic_consume(self) -> None:
        channel = self._consume_ch
        queue = self.settings.listen_queue
        generation = self.generation

        def on_ok(_frame: Any) -> None:
            if generation != self.generation:
                return
            log.debug("Started listening for messages on %s", queue)
            self._consuming = True
            if self._consume_started is not None and not self._consume_started.done():
                self._consume_started.set_result(self._consumer_tag)

        def on_message(_channel: Any, method: Any, properties: Any, body: bytes) -> None:
            if generation == self.generation:  # else its connection is being abandoned: it comes again
                self._io_on_message(DeliveryRef(generation, method.delivery_tag), method, properties, body)

        self._consumer_tag = channel.basic_consume(queue, on_message, auto_ack=False, callback=on_ok)

    def _io_on_consumer_cancelled(self, generation: int, frame: Any) -> None:
        """The broker cancelled our consumer (queue deleted, node failover): resubscribe via a reconnect."""
        if generation != self.generation:
            return
        log.error("Consumer cancelled by RabbitMQ; reconnecting to consume again")
        self._consumer_tag = None
        self._consuming = False
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _io_stop_consume(self, future: Completion) -> None:
        self._want_consume = False
        tag, channel = self._consumer_tag, self._consume_ch
        if tag is None or channel is None or not channel.is_open:
            future.set_result(None)
            return
        self._consumer_tag = None
        self._consuming = False
        channel.basic_cancel(tag, callback=lambda _frame: future.set_result(None))

    def _io_on_message(self, ref: DeliveryRef, method: Any, properties: Any, body: bytes) -> None:
        try:
            self._on_delivery(ref, delivery_from(method, properties, body))
        except Exception as exc:  # never let a handler bug kill the I/O loop
            log.error("delivery handler failed (deliveryTag %s): %s", method.delivery_tag, exc, exc_info=True)

    def _io_settle(self, ref: DeliveryRef, ack: bool, future: Completion) -> None:
        channel = self._consume_ch
        if ref.generation != self.generation or channel is None or not channel.is_open:
            future.set_exception(
                StaleDelivery(
                    f"delivery {ref.delivery_tag} of connection {ref.generation} "
                    f"cannot be settled on connection {self.generation}"
                )
            )
            return
        try:
            if ack:
                channel.basic_ack(ref.delivery_tag)
            else:
                channel.basic_reject(ref.delivery_tag, requeue=False)
        except Exception as exc:
            future.set_exception(StaleDelivery(str(exc)))
            return
        future.set_result(None)

    # --- I/O thread: publishing -------------------------------------------------------------------
    def _io_publish(self, pub: Publication, future: Completion) -> None:
        channel = self._publish_ch
        if not self._ready.is_set() or channel is None or not channel.is_open:
            future.set_exception(ConnectionLost("not connected"))
            return
        try:
            channel.basic_publish(
                pub.exchange, pub.routing_key, pub.body, publication_properties(pub), mandatory=pub.mandatory
            )
        except Exception as exc:
            future.set_exception(ConnectionLost(f"publish failed: {exc}"))
            return
        self._publish_seq += 1
        self._pending[self._publish_seq] = (future, pub)

    def _io_on_confirm(self, generation: int, frame: Any) -> None:
        if generation != self.generation:
            return
        method = frame.method
        tag, multiple = method.delivery_tag, method.multiple
        nacked = isinstance(method, pika.spec.Basic.Nack)
        tags = [t for t in self._pending if t <= tag] if multiple else [tag]
        for t in tags:
            entry = self._pending.pop(t, None)
            if entry is None:
                continue
            future, pub = entry
            if future.done():
                continue
            if nacked:
                future.set_exception(
                    PublishNacked(
                        f"broker refused the {pub.kind or 'message'} publish "
                        f"to {pub.exchange!r}/{pub.routing_key!r}"
                    )
                )
            else:
                future.set_result(None)

    def _io_on_return(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        """An unroutable mandatory publish: logged and then confirmed, as the Node sailor ignores it."""
        headers = properties.headers or {}
        log.warning(
            "message returned by the broker (%s %s): exchange %r, routing key %r, messageId %s",
            method.reply_code,
            method.reply_text,
            method.exchange,
            method.routing_key,
            headers.get("messageId"),
        )
