"""The AMQP worker: ``python -m elasticio_sailor run``.

Threads, and why:
- ``sailor-amqp-io`` (amqp.py) owns the pika connection: consuming, publishing, confirms, acks,
  heartbeats. Nothing slow ever runs there.
- ``sailor-worker-N``, a pool of RABBITMQ_PREFETCH_SAILOR threads: each delivery runs on one of them,
  from decoding to settlement. A component's ``emit`` publishes at once (one message's events go
  out in emit order on the one publish channel) without waiting for the broker's confirm; the
  confirms of a message are awaited together on its first ``end``, before it is settled (and after
  MAX_IN_FLIGHT unconfirmed publications, so that a component never outruns the broker).
- The main thread waits for SIGTERM/SIGINT, then cancels the consumer, lets the pool finish every
  delivery it has (publish, confirm, settle), closes the connection and exits 0. A second signal
  abandons unconfirmed work instead of retrying it (it stays unacked and is redelivered).
  Meanwhile it is the watchdog: every 0.5 s it checks that the process can still work (the I/O
  thread alive and turning, the pool's threads alive, a consumer whenever connected) and exits 1
  when not, so that the orchestrator restarts it; unacked messages return to the queue. Never alive
  but idle. `sailor-health` (opt-in, ELASTICIO_SAILOR_HEALTH_PORT) answers GET /healthz from it.

Settlement follows the Node sailor: on the first ``end`` the delivery is acked, or rejected without
requeue (dead-lettered) when an error was emitted for it, and only after every publication for it
was confirmed. An undecodable delivery is rejected at once. When the connection drops, unconfirmed
publishes are retried on the new connection; a delivery from the old connection cannot be acked,
so the broker redelivers it: at least once, never lost.

Redeliveries: a delivery is the same message as one this process has seen only when the broker
flagged it ``redelivered`` *and* the digest of its raw body matches a run still in progress from an
earlier connection (that run then settles the new delivery) or a run settled recently on an earlier
connection (its ack may not have reached the broker: the redelivery is settled the same way, not run
again). Headers such as ``messageId`` are never trusted for this: the Node sailor gives every message
emitted for one input the same id, and two different messages are always both processed. What is
left is at least once: a run whose process died (SIGKILL, crash) is run again by the next consumer,
and a publish whose confirm was lost with the connection is published again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from .amqp import (
    MAX_RECONNECT_DELAY,
    AmqpTransport,
    Completion,
    ConnectionLost,
    DeliveryRef,
    PublishNacked,
    StartupFailed,
    describe,
)
from .component import Component
from .dialects import select_dialect
from .dialects.base import Delivery, Dialect, Execution, Publication, RejectMessage
from .env import SettingsError
from .logs import bind, get_logger, register_secrets, setup_logging
from .runner import EmitFailed, error_payload, run_process

log = get_logger("elasticio_sailor.worker")

SETTLED_TTL = 600.0  # seconds a settled run is remembered for a redelivery of its message
SETTLED_LIMIT = 10_000  # settled runs remembered at most (forgetting one costs a duplicate, never a loss)
AFFINITY_VARIABLE = "ELASTICIO_SAILOR_CPU_AFFINITY"
HEALTH_PORT_VARIABLE = "ELASTICIO_SAILOR_HEALTH_PORT"
RECONNECT_DELAY_VARIABLE = "ELASTICIO_SAILOR_RECONNECT_MAX_DELAY"
IO_STALL_LIMIT = 30.0  # seconds without a turn of the AMQP I/O loop: it is stuck, the watchdog exits
CONSUMER_GRACE = 30.0  # seconds connected without our consumer registered: the watchdog exits
MAX_IN_FLIGHT = 64  # publications of one message awaiting their confirms before the next waits for them
UNHEALTHY_AFTER = 60.0  # seconds without consuming (e.g. broker unreachable) before /healthz answers 503


@dataclass(eq=False)
class Sent:
    """One publication in flight: its confirm, and how often it was published again."""

    pub: Publication
    future: Completion
    retries: int = 0


class Abandoned(Exception):
    """The worker gave up on a publication (second stop signal): the delivery stays unacked."""


def body_digest(body: bytes) -> bytes:
    """What identifies one message across its redeliveries: the broker redelivers the very same bytes."""
    return hashlib.blake2b(body, digest_size=16).digest()


@dataclass(eq=False)
class Job:
    """One delivery in progress; `ref` moves to the newest redelivery of the same message."""

    ref: DeliveryRef
    digest: bytes
    message_id: str | None  # for logs only
    settled: bool = False


@dataclass(eq=False)
class SettledRun:
    digest: bytes
    generation: int  # the connection its delivery came over
    ack: bool
    at: float


class SettledRuns:
    """Runs settled recently, by body digest: a redelivery of one is settled the same way, not run again.

    Why remember successful acks too: an ack written just before the connection dropped may never have
    reached the broker, which then redelivers a message we completed. Each run answers one redelivery,
    and only one that arrives over a later connection than the run's own. Bounded in count and age.
    """

    def __init__(self, limit: int = SETTLED_LIMIT, ttl: float = SETTLED_TTL) -> None:
        self.limit, self.ttl = limit, ttl
        self._order: deque[SettledRun] = deque()
        self._by_digest: dict[bytes, list[SettledRun]] = {}

    def add(self, digest: bytes, generation: int, ack: bool, now: float) -> None:
        run = SettledRun(digest, generation, ack, now)
        self._order.append(run)
        self._by_digest.setdefault(digest, []).append(run)
        while self._order and (len(self._order) > self.limit or now - self._order[0].at > self.ttl):
            self._forget(self._order.popleft())

    def take(self, digest: bytes, generation: int, now: float) -> SettledRun | None:
        """The oldest run of this body settled over an earlier connection, used up; None if there is none."""
        for run in self._by_digest.get(digest, ()):
            if run.generation < generation and now - run.at <= self.ttl:
                self._forget(run)
                return run
        return None

    def _forget(self, run: SettledRun) -> None:
        runs = self._by_digest.get(run.digest)
        if runs is not None and run in runs:
            runs.remove(run)
            if not runs:
                del self._by_digest[run.digest]


class WorkerPool:
    """`size` threads running the deliveries handed to `submit`, in arrival order.

    Why not ThreadPoolExecutor: per task it creates a Future and takes its Condition, its idle
    semaphore (a Python-level Condition) and two shutdown locks, all on the I/O thread or in the way
    of the next delivery; here a hand-over is one queue put. `shutdown` lets every delivery already
    submitted run to its end, as ``ThreadPoolExecutor.shutdown(wait=True)`` does.
    """

    def __init__(self, size: int, target: Callable[..., None], name: str = "sailor-worker") -> None:
        self._target = target
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(max(1, size))
        ]
        self._started = False

    def submit(self, *args: Any) -> None:
        """Queue one task; RuntimeError after shutdown (the caller leaves the delivery unacked)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            if not self._started:  # started with the first task: a worker that never consumes has none
                self._started = True
                for thread in self._threads:
                    thread.start()
            self._queue.put(args)

    def dead_threads(self) -> list[str]:
        """Threads that ended although the pool was not shut down (they catch everything: a sailor bug)."""
        if not self._started or self._closed:
            return []
        return [t.name for t in self._threads if not t.is_alive()]

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                for _ in self._threads:  # behind every task already queued
                    self._queue.put(None)
        if wait and self._started:
            for thread in self._threads:
                thread.join()

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                return
            try:
                self._target(*task)
            except BaseException as exc:  # a sailor bug: log it, keep the thread serving
                log.error("worker task failed: %s: %s", type(exc).__name__, exc, exc_info=True)
            del task


def _message_id(delivery: Delivery) -> str | None:
    value = (delivery.headers or {}).get("messageId")
    return value if isinstance(value, str) and value else None


class Worker:
    """Consumes one queue and runs the component for each delivery; see the module docstring."""

    def __init__(
        self,
        dialect: Dialect,
        max_reconnect_delay: float = MAX_RECONNECT_DELAY,
        health_port: int | None = None,
    ) -> None:
        if dialect.amqp is None:
            raise ValueError("this dialect does not use AMQP")
        self.dialect = dialect
        self.settings = dialect.amqp
        self.component: Component | None = None
        self.transport = AmqpTransport(self.settings, self._on_delivery, max_reconnect_delay)
        self.health_port = health_port
        self._not_consuming_since: float | None = None  # watchdog state (main thread)
        self._problem: str | None = None  # the watchdog's last finding, for /healthz
        self.pool = WorkerPool(self.settings.prefetch, self._handle)
        self._lock = threading.Lock()
        self._running: dict[bytes, list[Job]] = {}  # by body digest, from delivery until settled
        self._settled_runs = SettledRuns()
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self.processed = 0

    # --- lifecycle -----------------------------------------------------------------------------
    def request_stop(self, signum: int | None = None, _frame: Any = None) -> None:
        name = signal.Signals(signum).name if signum else "stop request"
        if self._stopping.is_set():
            log.warning("Received %s again: abandoning unconfirmed work (it will be redelivered)", name)
            self._abort.set()
            return
        log.info("Received %s: finishing the messages in flight, then exiting", name)
        self._stopping.set()

    def run(self) -> int:
        try:
            self.transport.connect()
        except StartupFailed as exc:
            log.critical("cannot connect to AMQP: %s", exc)
            return 1
        try:
            self.component = Component(self.dialect.component_path)
            self.dialect.start(self.component)
        except Exception as exc:
            log.critical("start-up failed: %s: %s", type(exc).__name__, exc, exc_info=True)
            self._report_startup_error(exc)
            self.transport.close()
            return 1
        try:
            self.transport.consume()
        except Exception as exc:
            log.critical("cannot consume %r: %s", self.settings.listen_queue, exc)
            self.transport.close()
            return 1
        health = start_health_server(self.health_port, self.health) if self.health_port else None
        log.info(
            "Fully initialized and waiting for messages",
            extra={"queue": self.settings.listen_queue, "prefetch": self.settings.prefetch},
        )
        while not self._stopping.wait(0.5):
            self._problem = self.liveness_problem()
            if self._problem:  # never alive but idle: exit, the orchestrator restarts us, RabbitMQ requeues
                log.critical("%s: exiting with 1; unacked messages return to the queue", self._problem)
                return 1
        if health is not None:
            health.shutdown()
        self.transport.stop_consuming()
        log.info("Stopped consuming; waiting for the messages in flight")
        self.pool.shutdown(wait=True)
        try:
            self.dialect.stop()
        finally:
            self.transport.close()
        log.info("Disconnected; %d messages processed", self.processed)
        return 0

    def liveness_problem(self) -> str | None:
        """Why this process cannot do its work any more (the watchdog then exits 1), or None.

        Called every 0.5 s by the main thread, and only there (it keeps state). A broker that cannot
        be reached is not such a problem (the transport reconnects without limit; /healthz reports
        it); a dead I/O thread, a stuck I/O loop, a dead worker thread or a connection without our
        consumer is.
        """
        transport = self.transport
        if transport.failed:
            return f"the AMQP I/O thread ended ({describe(transport.failure)})"
        now = time.monotonic()
        if now - transport.last_tick > IO_STALL_LIMIT:
            return f"the AMQP I/O loop has not turned for {now - transport.last_tick:.0f}s"
        dead = self.pool.dead_threads()
        if dead:
            return f"worker threads ended: {', '.join(dead)}"
        if transport.consuming or not transport.wants_to_consume:
            self._not_consuming_since = None
            return None
        if self._not_consuming_since is None:
            self._not_consuming_since = now
        if transport.ready and now - self._not_consuming_since > CONSUMER_GRACE:
            return f"connected for {CONSUMER_GRACE:.0f}s without a consumer on {self.settings.listen_queue!r}"
        return None

    def health(self) -> tuple[bool, str]:
        """What /healthz answers, from the watchdog's last round: healthy while consuming, or not
        consuming for less than UNHEALTHY_AFTER; unhealthy when the watchdog found a problem."""
        problem = self._problem
        if problem:
            return False, problem
        since = self._not_consuming_since
        if since is not None and time.monotonic() - since > UNHEALTHY_AFTER:
            return False, f"not consuming for {time.monotonic() - since:.0f}s (broker unreachable?)"
        return True, "consuming" if since is None else "reconnecting"

    def _report_startup_error(self, exc: BaseException) -> None:
        try:
            for pub in self.dialect.startup_error(exc):
                self.transport.publish(pub).result(10)
        except Exception as report_exc:
            log.error("cannot report the start-up error: %s", report_exc)

    # --- deliveries (I/O thread) ---------------------------------------------------------------------
    def _on_delivery(self, ref: DeliveryRef, delivery: Delivery) -> None:
        job = Job(ref, body_digest(delivery.body), _message_id(delivery))
        earlier: SettledRun | None = None
        with self._lock:
            if delivery.redelivered:  # only the broker's flag plus the same bytes make it the same message
                for running in self._running.get(job.digest, ()):
                    if running.ref.generation < ref.generation:
                        log.warning(
                            "redelivery of a message still in progress: it will settle this delivery",
                            extra={"messageId": job.message_id, "deliveryTag": ref.delivery_tag},
                        )
                        running.ref = ref
                        return
                earlier = self._settled_runs.take(job.digest, ref.generation, time.monotonic())
            if earlier is None:
                self._running.setdefault(job.digest, []).append(job)
        if earlier is not None:
            log.info(
                "redelivery of a message already processed: settling it without processing again",
                extra={"messageId": job.message_id, "deliveryTag": ref.delivery_tag, "ack": earlier.ack},
            )
            self.transport.settle(ref, earlier.ack)
            return
        try:
            self.pool.submit(job, delivery)
        except RuntimeError:  # the pool is shut down: leave it unacked, the broker redelivers it
            self._forget(job)
            log.warning("delivery after shutdown left unacked", extra={"deliveryTag": ref.delivery_tag})

    def _forget(self, job: Job) -> None:
        """The run is over without a settlement of ours: a redelivery of it must be processed again."""
        with self._lock:
            self._unregister(job)

    def _unregister(self, job: Job) -> None:
        """Under the lock."""
        jobs = self._running.get(job.digest)
        if jobs is not None and job in jobs:
            jobs.remove(job)
            if not jobs:
                del self._running[job.digest]

    # --- deliveries (worker threads) ---------------------------------------------------------------
    def _handle(self, job: Job, delivery: Delivery) -> None:
        ref = job.ref
        try:
            execution = self.dialect.prepare(delivery)
        except Exception as exc:
            reason = exc.reason if isinstance(exc, RejectMessage) else f"{type(exc).__name__}: {exc}"
            log.error(
                "rejecting a message that cannot be decoded: %s",
                reason,
                extra={"messageId": job.message_id, "deliveryTag": ref.delivery_tag},
            )
            self._settle(job, ack=False)
            return
        register_secrets(execution.secrets)
        try:
            with bind(**{k: v for k, v in execution.log_context.items() if v is not None}):
                self._execute(job, execution)
        finally:
            if not job.settled:  # a settled job leaves _running once the broker side is done (_settled)
                self._forget(job)
            self.processed += 1

    def _execute(self, job: Job, execution: Execution) -> None:
        ended = False
        sent: list[Sent] = []  # this message's publications in flight, in publish order

        def emit(kind: str, payload: Any) -> None:
            nonlocal ended
            if kind == "end":
                if ended:
                    return
                ended = True
                self._send_all(sent, self.dialect.on_end(execution))
                self._settle_when_confirmed(job, execution, sent)
                return
            try:
                publications = self.dialect.publications(execution, kind, payload)
            except Exception as exc:  # e.g. data that cannot be serialised: an error event, as onData does
                log.error("cannot build the %s event: %s: %s", kind, type(exc).__name__, exc)
                publications = self._error_instead(execution, exc)
            self._send_all(sent, publications)
            if ended or len(sent) >= MAX_IN_FLIGHT:  # after the end nothing waits for them: confirm now
                self._confirm_all(execution, sent)

        log.debug(
            "processing message", extra={"deliveryTag": job.ref.delivery_tag, "function": execution.function}
        )
        assert self.component is not None
        try:
            if execution.error is not None:  # the dialect found it cannot run: error, then end
                try:
                    emit("error", execution.error)
                    emit("end", None)
                except Exception as exc:
                    raise EmitFailed(str(exc)) from exc
                return
            run_process(
                self.component,
                execution.function,
                execution.message,
                execution.cfg,
                execution.snapshot,
                emit,
                flow_variables=execution.flow_variables,
            )
        except EmitFailed as exc:
            cause = exc.__cause__
            while isinstance(cause, EmitFailed) and cause.__cause__ is not None:
                cause = cause.__cause__
            if isinstance(cause, Abandoned):
                log.warning("message left unacked (shutting down): it will be redelivered")
                return
            log.error("publishing an event failed: %s", cause or exc, exc_info=cause or exc)
            if not job.settled:
                self._settle(job, ack=False)
        except Exception as exc:  # a sailor bug, not a component error (those become error events)
            log.error("processing failed: %s: %s", type(exc).__name__, exc, exc_info=True)
            if not job.settled:
                self._settle(job, ack=False)

    def _error_instead(self, execution: Execution, exc: BaseException) -> list[Publication]:
        return self.dialect.publications(execution, "error", error_payload(exc, set(execution.secrets)))

    def _send_all(self, sent: list[Sent], publications: list[Publication]) -> None:
        """Publish each one as soon as the transport is ready, without waiting for its confirm.

        One message's publications go out in emit order on the one publish channel, so the broker
        receives and routes them in that order; their confirms are awaited together (`_confirm_all`),
        one broker round trip per message instead of one per publication.
        """
        for pub in publications:
            sent.append(Sent(pub, self._publish(pub)))

    def _publish(self, pub: Publication) -> Completion:
        while True:
            if self._abort.is_set():
                raise Abandoned("publication abandoned on a second stop signal")
            if self.transport.failed:
                raise Abandoned("publication abandoned: the AMQP transport has stopped")
            if self.transport.wait_ready(0.5):
                return self.transport.publish(pub)

    def _confirm_all(self, execution: Execution, sent: list[Sent]) -> None:
        """Wait until the broker confirmed every publication in `sent` (which ends empty).

        What the connection lost is published again after the reconnect, what the broker nacked after a
        backoff, each time in the original order. A nacked event that runs out of retries becomes an
        error event, as the Node sailor does (a nacked error event fails the run: EmitFailed).
        """
        while sent:
            pending, sent[:] = list(sent), []
            again: list[Sent] = []
            delay = 0.0
            for entry in pending:
                try:
                    self._wait(entry.future)
                    log.debug("published %s", entry.pub.kind, extra={"routingKey": entry.pub.routing_key})
                    continue
                except ConnectionLost as exc:
                    log.warning(
                        "publish of %s interrupted (%s); retrying after reconnect", entry.pub.kind, exc
                    )
                except PublishNacked as exc:
                    if entry.retries + 1 >= self.settings.publish_retry_attempts:
                        if entry.pub.kind == "error":
                            raise
                        log.error("giving up publishing the %s event: %s", entry.pub.kind, exc)
                        self._send_all(sent, self._error_instead(execution, exc))
                        continue
                    wait_ms = min(
                        self.settings.publish_retry_delay * 2**entry.retries,
                        self.settings.publish_max_retry_delay,
                    )
                    log.warning("%s; retrying in %d ms", exc, wait_ms)
                    delay = max(delay, wait_ms / 1000.0)
                entry.retries += 1
                entry.pub.headers = {**entry.pub.headers, "retry": entry.retries}
                again.append(entry)
            if delay:
                time.sleep(delay)
            for entry in again:  # in their original order
                entry.future = self._publish(entry.pub)
            sent[:0] = again

    def _settle_when_confirmed(self, job: Job, execution: Execution, sent: list[Sent]) -> None:
        """Settle the delivery once every publication in `sent` is confirmed.

        When all are confirmed, the last confirm's callback settles it right there on the I/O thread:
        the ack goes out in the same loop turn as that confirm, without waking this thread first and
        handing the ack back (the broker sends the next delivery only after the ack, so this is on
        every message's critical path). This thread then only learns that it is done. If any failed,
        this thread publishes again (`_confirm_all`) and settles.
        """
        ack = not execution.failed
        if not sent:
            self._settle(job, ack)
            return
        all_resolved = Completion()
        lock = threading.Lock()
        state = {"left": len(sent), "failed": False}

        def resolved(future: Completion) -> None:
            with lock:
                state["left"] -= 1
                state["failed"] = state["failed"] or future.exception() is not None
                last, failed = state["left"] == 0, state["failed"]
            if last:
                if not failed:
                    self._settle(job, ack)
                all_resolved.set_result()

        for entry in list(sent):
            entry.future.add_done_callback(resolved)
        self._wait(all_resolved)
        if job.settled:  # every one confirmed, and settled by the last confirm's callback
            sent.clear()
            return
        self._confirm_all(execution, sent)
        self._settle(job, ack=not execution.failed)

    def _wait(self, future: Completion) -> None:
        while True:
            try:
                future.result(0.5)
                return
            except FutureTimeout:
                if self._abort.is_set():
                    raise Abandoned("publication abandoned on a second stop signal") from None

    def _settle(self, job: Job, ack: bool) -> None:
        """Ack or reject without waiting: the outcome is handled by `_settled` on the I/O thread.

        Not waiting saves a thread wake-up (and a GIL hand-off) per message; the delivery stays in
        `_running` until the broker side is settled, so a redelivery meanwhile is still recognised.
        """
        job.settled = True
        with self._lock:
            ref = job.ref
        future = self.transport.settle(ref, ack)
        future.add_done_callback(lambda f: self._settled(job, ack, ref, f))

    def _settled(self, job: Job, ack: bool, ref: DeliveryRef, future: Completion) -> None:
        verb = "ack" if ack else "reject"
        exc = future.exception()
        with self._lock:
            retry = exc is not None and job.ref != ref  # a redelivery arrived meanwhile: settle that one
            if not retry:  # a redelivery of it, over a later connection, is settled the same way
                self._settled_runs.add(job.digest, ref.generation, ack, time.monotonic())
                self._unregister(job)
        if retry:
            self._settle(job, ack)
        elif exc is None:
            log.debug(
                "message %sed", verb, extra={"deliveryTag": ref.delivery_tag, "messageId": job.message_id}
            )
        else:
            log.warning(
                "cannot %s the message (%s): the broker will redeliver it",
                verb,
                exc,
                extra={"messageId": job.message_id},
            )


def _current_cpu() -> int | None:
    """The CPU this thread runs on now (/proc/self/stat field 39), None where it cannot be read."""
    try:
        with open("/proc/thread-self/stat", encoding="ascii") as fh:
            stat = fh.read()
        return int(stat[stat.rindex(")") + 2 :].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def cpu_affinity(value: str | None) -> set[int] | None:
    """The CPUs to keep this process on, from ELASTICIO_SAILOR_CPU_AFFINITY; None: leave it alone.

    Why pin at all: the worker is one I/O thread plus RABBITMQ_PREFETCH_SAILOR worker threads handing
    every message to each other (delivery, publish, confirm, settle), and only one of them can run
    Python at a time (the GIL). Spread over several cores, each hand-over becomes a cross-core wake-up
    and a GIL convoy; on one core it is a plain context switch. Measured (bench/worker.py, 2 cores):
    +60 % messages/s at prefetch 10. Python code never uses a second core anyway; what is lost is the
    kernel's freedom to move the process. That is why it is opt-in: on a node running many sailors, two
    pinned to the same CPU would stay there while other CPUs idle, and no operator expects a container
    to pin itself.

    ``off`` (default): no pinning; ``auto``: when several CPUs are allowed, the one the process runs on
    now; ``0,2``: exactly these CPUs.
    """
    value = (value or "off").strip().lower()
    if value in ("off", "false", "no", "none"):
        return None
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    if value == "auto":
        if len(allowed) < 2:
            return None
        cpu = _current_cpu()
        return {cpu} if cpu in allowed else {min(allowed)}
    try:
        wanted = {int(part) for part in value.split(",") if part.strip()}
    except ValueError:
        raise SettingsError(f"{AFFINITY_VARIABLE} must be auto, off or a list of CPU numbers") from None
    if not wanted or not wanted <= allowed:
        raise SettingsError(f"{AFFINITY_VARIABLE}={value}: not among the allowed CPUs {sorted(allowed)}")
    return wanted


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    """One of our own ELASTICIO_SAILOR_* numbers from the environment, `low` to `high`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


def start_health_server(port: int, health: Callable[[], tuple[bool, str]]) -> Any:
    """GET /healthz on `port`: 200 when healthy, 503 otherwise, with the reason, for liveness probes."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # probes every few seconds: not worth a log line
            pass

        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                body = b'{"error": "not found"}'
                self.send_response(404)
            else:
                ok, reason = health()
                body = json.dumps({"status": "ok" if ok else "unhealthy", "reason": reason}).encode()
                self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 (probed from outside the pod)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sailor-health", daemon=True).start()
    log.info("health check on http://0.0.0.0:%d/healthz", port)
    return server


def run_dialect_without_broker(dialect: Dialect) -> int:
    """elastic.io HOOK_SHUTDOWN mode: run the shutdown hook, no AMQP connection."""
    try:
        dialect.start(Component(dialect.component_path))
    except Exception as exc:
        log.critical("shutdown hook failed: %s: %s", type(exc).__name__, exc, exc_info=True)
        return 1
    return 0


def main() -> int:
    """Entry point of ``python -m elasticio_sailor run``: the exit code."""
    setup_logging()
    if logging.getLogger().level > 5:  # pika's own info lines only at LOG_LEVEL=trace
        logging.getLogger("pika").setLevel(logging.WARNING)
    try:
        dialect = select_dialect()
    except ValueError as exc:  # a SettingsError, or a crypto key of the wrong size
        log.critical("configuration error: %s", exc)
        return 1
    register_secrets(dialect.secrets)
    log.info("sailor starting", extra={"dialect": dialect.name, "function": dialect.function})
    if dialect.amqp is None:
        return run_dialect_without_broker(dialect)
    try:
        cpus = cpu_affinity(os.environ.get(AFFINITY_VARIABLE))
        if cpus is not None:  # the calling thread, before the others start: they inherit it
            os.sched_setaffinity(0, cpus)
            shown = ",".join(map(str, sorted(cpus)))
            log.info("pinned to CPU %s (%s=off to disable)", shown, AFFINITY_VARIABLE)
    except SettingsError as exc:
        log.critical("configuration error: %s", exc)
        return 1
    except OSError as exc:  # e.g. a seccomp profile forbids it: run unpinned
        log.warning("cannot pin the process to one CPU: %s", exc)
    try:
        default_delay = int(MAX_RECONNECT_DELAY * 1000)
        reconnect_delay = _whole_number(RECONNECT_DELAY_VARIABLE, default_delay, 1, 3_600_000) / 1000
        health_port = _whole_number(HEALTH_PORT_VARIABLE, 0, 1, 65535) or None
    except SettingsError as exc:
        log.critical("configuration error: %s", exc)
        return 1
    worker = Worker(dialect, reconnect_delay, health_port)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    try:
        return worker.run()
    except Exception as exc:
        log.critical("worker failed: %s: %s", type(exc).__name__, exc, exc_info=True)
        return 1
    finally:
        logging.shutdown()
