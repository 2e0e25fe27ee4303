"""The AMQP worker: ``python -m elasticio_sailor run``.

Threads, and why:
- ``sailor-amqp-io`` (amqp.py) owns the pika connection: consuming, publishing, confirms, acks,
  heartbeats. Nothing slow ever runs there.
- ``sailor-worker-N``, a pool of RABBITMQ_PREFETCH_SAILOR threads: each delivery runs on one of them,
  from decoding to settlement. A component's ``emit`` publishes and blocks until the broker confirms,
  so the events of one message keep their order and a component never outruns the broker.
- The main thread waits for SIGTERM/SIGINT, then cancels the consumer, lets the pool finish every
  delivery it has (publish, confirm, settle), closes the connection and exits 0. A second signal
  abandons unconfirmed work instead of retrying it (it stays unacked and is redelivered).

Settlement follows the Node sailor: on the first ``end`` the delivery is acked, or rejected without
requeue (dead-lettered) when an error was emitted for it, and only after every publication for it
was confirmed. An undecodable delivery is rejected at once. When the connection drops, unconfirmed
publishes are retried on the new connection; a delivery from the old connection cannot be acked,
so the broker redelivers it. Like sailor-nodejs >= 2.7.7, a redelivery whose ``messageId`` header
matches a delivery still running (or finished while disconnected) is not processed again: the
original run settles the newest delivery. Messages without ``messageId`` are simply processed again
(at least once, never lost).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from .amqp import AmqpTransport, Completion, ConnectionLost, DeliveryRef, PublishNacked, StartupFailed
from .component import Component
from .dialect import Delivery, Dialect, Execution, Publication, RejectMessage
from .logs import bind, get_logger, register_secrets, setup_logging
from .runner import EmitFailed, error_payload, run_process
from .settings import SettingsError, select_dialect

log = get_logger("elasticio_sailor.worker")

FINISHED_TTL = 600.0  # seconds a finished-but-unacked messageId is remembered for its redelivery
AFFINITY_VARIABLE = "ELASTICIO_SAILOR_CPU_AFFINITY"


class Abandoned(Exception):
    """The worker gave up on a publication (second stop signal): the delivery stays unacked."""


@dataclass
class Job:
    """One delivery in progress; `ref` moves to the newest redelivery of the same messageId."""

    ref: DeliveryRef
    message_id: str | None
    settled: bool = False


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

    def __init__(self, dialect: Dialect) -> None:
        if dialect.amqp is None:
            raise ValueError("this dialect does not use AMQP")
        self.dialect = dialect
        self.settings = dialect.amqp
        self.component: Component | None = None
        self.transport = AmqpTransport(self.settings, self._on_delivery)
        self.pool = WorkerPool(self.settings.prefetch, self._handle)
        self._lock = threading.Lock()
        self._inflight: dict[str, Job] = {}
        self._finished: dict[str, tuple[bool, float]] = {}
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
        log.info(
            "Fully initialized and waiting for messages",
            extra={"queue": self.settings.listen_queue, "prefetch": self.settings.prefetch},
        )
        while not self._stopping.wait(0.5):
            pass
        self.transport.stop_consuming()
        log.info("Stopped consuming; waiting for the messages in flight")
        self.pool.shutdown(wait=True)
        try:
            self.dialect.stop()
        finally:
            self.transport.close()
        log.info("Disconnected; %d messages processed", self.processed)
        return 0

    def _report_startup_error(self, exc: BaseException) -> None:
        try:
            for pub in self.dialect.startup_error(exc):
                self.transport.publish(pub).result(10)
        except Exception as report_exc:
            log.error("cannot report the start-up error: %s", report_exc)

    # --- deliveries (I/O thread) ---------------------------------------------------------------------
    def _on_delivery(self, ref: DeliveryRef, delivery: Delivery) -> None:
        message_id = _message_id(delivery)
        if message_id:
            with self._lock:
                job = self._inflight.get(message_id)
                if job is not None and job.ref.generation < ref.generation:
                    log.warning(
                        "redelivery of a message still in progress: it will settle this delivery",
                        extra={"messageId": message_id, "deliveryTag": ref.delivery_tag},
                    )
                    job.ref = ref
                    return
                finished = self._finished.pop(message_id, None)
            if finished is not None:
                ack = finished[0]
                log.info(
                    "redelivery of a message already processed: settling it without processing again",
                    extra={"messageId": message_id, "deliveryTag": ref.delivery_tag, "ack": ack},
                )
                self.transport.settle(ref, ack)
                return
        try:
            self.pool.submit(ref, delivery)
        except RuntimeError:  # the pool is shut down: leave it unacked, the broker redelivers it
            log.warning("delivery after shutdown left unacked", extra={"deliveryTag": ref.delivery_tag})

    # --- deliveries (worker threads) ---------------------------------------------------------------
    def _handle(self, ref: DeliveryRef, delivery: Delivery) -> None:
        job = Job(ref, _message_id(delivery))
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
        registered = False
        if job.message_id:
            with self._lock:
                if job.message_id not in self._inflight:
                    self._inflight[job.message_id] = job
                    registered = True
        try:
            with bind(**{k: v for k, v in execution.log_context.items() if v is not None}):
                self._execute(job, execution)
        finally:
            if registered and not job.settled:  # a settled job leaves _inflight once the broker side is done
                with self._lock:
                    if self._inflight.get(job.message_id) is job:
                        del self._inflight[job.message_id]
            self.processed += 1

    def _execute(self, job: Job, execution: Execution) -> None:
        ended = False

        def emit(kind: str, payload: Any) -> None:
            nonlocal ended
            if kind == "end":
                if ended:
                    return
                ended = True
                self._publish_all(self.dialect.on_end(execution))
                self._settle(job, ack=not execution.failed)
                return
            try:
                publications = self.dialect.publications(execution, kind, payload)
            except Exception as exc:  # e.g. data that cannot be serialised: an error event, as onData does
                log.error("cannot build the %s event: %s: %s", kind, type(exc).__name__, exc)
                publications = self._error_instead(execution, exc)
            try:
                self._publish_all(publications)
            except PublishNacked as exc:  # retries exhausted: the Node sailor turns this into an error event
                if kind == "error":
                    raise
                log.error("giving up publishing the %s event: %s", kind, exc)
                self._publish_all(self._error_instead(execution, exc))

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
                flow_variables=execution.state.get("flow_variables"),
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

    def _publish_all(self, publications: list[Publication]) -> None:
        for pub in publications:
            self._publish_confirmed(pub)

    def _publish_confirmed(self, pub: Publication) -> None:
        """Publish and wait for the broker's confirm, across reconnects; nacks retried with backoff."""
        retries = 0
        while True:
            if self._abort.is_set():
                raise Abandoned("publication abandoned on a second stop signal")
            if not self.transport.wait_ready(0.5):
                continue
            future = self.transport.publish(pub)
            try:
                while True:
                    try:
                        future.result(0.5)
                        log.debug("published %s", pub.kind, extra={"routingKey": pub.routing_key})
                        return
                    except FutureTimeout:
                        if self._abort.is_set():
                            raise Abandoned("publication abandoned on a second stop signal") from None
            except ConnectionLost as exc:
                log.warning("publish of %s interrupted (%s); retrying after reconnect", pub.kind, exc)
            except PublishNacked as exc:
                if retries + 1 >= self.settings.publish_retry_attempts:
                    raise
                delay = min(
                    self.settings.publish_retry_delay * 2**retries, self.settings.publish_max_retry_delay
                )
                log.warning("%s; retrying in %d ms", exc, delay)
                time.sleep(delay / 1000.0)
            retries += 1
            pub.headers = {**pub.headers, "retry": retries}

    def _settle(self, job: Job, ack: bool) -> None:
        """Ack or reject without waiting: the outcome is handled by `_settled` on the I/O thread.

        Not waiting saves a thread wake-up (and a GIL hand-off) per message; the delivery stays in
        `_inflight` until the broker side is settled, so a redelivery meanwhile is still recognised.
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
            if exc is not None and job.ref != ref:
                retry = True  # a redelivery arrived meanwhile: settle that one
            else:
                retry = False
                if exc is not None and job.message_id:
                    now = time.monotonic()
                    self._finished = {k: v for k, v in self._finished.items() if now - v[1] < FINISHED_TTL}
                    self._finished[job.message_id] = (ack, now)
                if job.message_id and self._inflight.get(job.message_id) is job:
                    del self._inflight[job.message_id]
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
    except (SettingsError, ValueError) as exc:
        log.critical("configuration error: %s", exc)
        return 1
    register_secrets(getattr(dialect, "secrets", []) or [])
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
    worker = Worker(dialect)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    try:
        return worker.run()
    except Exception as exc:
        log.critical("worker failed: %s: %s", type(exc).__name__, exc, exc_info=True)
        return 1
    finally:
        logging.shutdown()
