"""The worker's own concurrency primitives and shared protocol helpers, without a broker."""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout

import pytest
from elasticio_sailor.amqp import Completion
from elasticio_sailor.dialects.base import new_uuid, split_routing_key
from elasticio_sailor.env import SettingsError
from elasticio_sailor.worker import WorkerPool, cpu_affinity

pytestmark = pytest.mark.timeout(30)


def test_new_uuid_is_a_random_uuid4_string():
    ids = [new_uuid() for _ in range(1000)]  # several 4 kB refills
    assert len(set(ids)) == len(ids)
    for text in ids[:300]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


@pytest.mark.requires(hasattr(os, "fork"), reason="needs fork")
def test_new_uuid_differs_in_a_forked_child():
    new_uuid()  # the parent has a buffer now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        os.write(write, new_uuid().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert uuid.UUID(child_id).version == 4
    assert child_id != new_uuid()


def test_split_routing_key_any_case_last_wins():
    key, rest = split_routing_key({"a": 1, "X-EIO-Routing-Key": "k1", "x-eio-routing-key": "k2", "b": 2})
    assert key == "k2" and rest == {"a": 1, "b": 2}
    assert split_routing_key({"a": 1}) == (None, {"a": 1})


def test_completion_wakes_a_waiter_once_resolved():
    done = Completion()
    with pytest.raises(FutureTimeout):
        done.result(0.05)
    threading.Timer(0.05, done.set_result).start()
    started = time.monotonic()
    assert done.result(5) is None
    assert time.monotonic() - started < 4
    assert done.done() and done.result(0) is None and done.exception() is None  # repeatable


def test_completion_exception_first_resolution_wins_and_callbacks_run_once():
    done = Completion()
    seen: list[BaseException | None] = []
    done.add_done_callback(lambda c: seen.append(c.exception()))
    done.set_exception(ValueError("nacked"))
    done.set_result()  # ignored: already resolved
    with pytest.raises(ValueError, match="nacked"):
        done.result(1)
    done.add_done_callback(lambda c: seen.append(c.exception()))  # already done: runs at once
    assert [type(e) for e in seen] == [ValueError, ValueError]


def test_worker_pool_runs_tasks_and_finishes_the_queue_on_shutdown():
    seen: list[int] = []
    lock = threading.Lock()

    def task(i: int) -> None:
        time.sleep(0.01)
        with lock:
            seen.append(i)
        if i == 3:
            raise RuntimeError("a failing task does not stop the pool")

    pool = WorkerPool(2, task)
    for i in range(20):
        pool.submit(i)
    pool.shutdown(wait=True)
    assert sorted(seen) == list(range(20))
    with pytest.raises(RuntimeError):
        pool.submit(99)
    assert 99 not in seen
    WorkerPool(3, task).shutdown()  # never started: nothing to join


@pytest.mark.requires(hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_cpu_affinity_values():
    allowed = os.sched_getaffinity(0)
    assert cpu_affinity("off") is None and cpu_affinity("OFF ") is None
    assert cpu_affinity(None) is None and cpu_affinity("") is None  # opt-in: unpinned by default
    auto = cpu_affinity("auto")
    if len(allowed) > 1:
        assert auto is not None and len(auto) == 1 and auto <= allowed
    else:
        assert auto is None  # nothing to gain on one CPU
    first = min(allowed)
    assert cpu_affinity(f"{first}") == {first}
    with pytest.raises(SettingsError):
        cpu_affinity("fast")
    with pytest.raises(SettingsError):
        cpu_affinity(str(max(allowed) + 1000))


class _ScriptedTransport:
    """Stands in for AmqpTransport: every publish is recorded; the test resolves its confirm."""

    failed = False

    def __init__(self) -> None:
        self.published: list[tuple[str, dict, Completion]] = []
        self.settled: list[tuple[object, bool, str]] = []

    def wait_ready(self, _timeout: float | None = None) -> bool:
        return True

    def publish(self, pub) -> Completion:
        future = Completion()
        self.published.append((pub.body.decode(), dict(pub.headers), future))
        return future

    def settle(self, ref, ack: bool) -> Completion:
        self.settled.append((ref, ack, threading.current_thread().name))
        future = Completion()
        future.set_result(None)
        return future


class _ErrorDialect:
    def __init__(self) -> None:
        from elasticio_sailor.dialects.base import AmqpSettings

        self.amqp = AmqpSettings(
            uri="amqp://127.0.0.1:1/%2F",
            listen_queue="q",
            prefetch=1,
            publish_retry_delay=1,
            publish_retry_attempts=3,
        )

    def publications(self, execution, kind, payload):
        from elasticio_sailor.dialects.base import Publication

        execution.failed = True
        return [Publication("x", "error", f"error: {payload['message']}".encode(), {}, kind="error")]


def _pipelined_worker():
    from elasticio_sailor.worker import Worker

    worker = Worker(_ErrorDialect())  # type: ignore[arg-type]
    worker.transport = _ScriptedTransport()  # type: ignore[assignment]
    return worker


def _resolve_in_turn(
    transport: _ScriptedTransport,
    outcomes: dict[tuple[str, int], BaseException | None],
    stop: threading.Event,
    once_awaited: bool = False,
) -> None:
    """Resolve each publish (by body and publish attempt) as scripted; unscripted ones are confirmed.
    `once_awaited`: only after the worker attached its done-callback (as a confirm after the end)."""
    seen = 0
    while not stop.is_set():
        while seen < len(transport.published):
            body, headers, future = transport.published[seen]
            if once_awaited and not future._callbacks:
                break
            outcome = outcomes.get((body, headers.get("retry", 0)))
            future.set_exception(outcome) if outcome else future.set_result(None)
            seen += 1
        time.sleep(0.001)


def test_a_message_s_publications_are_in_flight_together_and_retried_in_their_order():
    """Three data events go out before any confirm; two lost with the connection go out again, in order,
    once (marked retry 1); the settlement waits for the last of them and runs where it was confirmed."""
    from elasticio_sailor.amqp import ConnectionLost, DeliveryRef
    from elasticio_sailor.dialects.base import Publication
    from elasticio_sailor.worker import Job, Sent

    worker = _pipelined_worker()
    transport = worker.transport
    sent: list[Sent] = []
    worker._send_all(sent, [Publication("x", "data", f"d{i}".encode(), {}, kind="data") for i in range(3)])
    assert [p[0] for p in transport.published] == ["d0", "d1", "d2"], "all three out before any confirm"
    assert not any(p[2].done() for p in transport.published)
    stop = threading.Event()
    lost = ConnectionLost("connection closed")
    resolver = threading.Thread(
        target=_resolve_in_turn, args=(transport, {("d0", 0): lost, ("d2", 0): lost}, stop)
    )
    resolver.start()
    try:
        job = Job(DeliveryRef(1, 7), b"digest", None)
        execution = type("E", (), {"failed": False, "secrets": []})()
        worker._settle_when_confirmed(job, execution, sent)
    finally:
        stop.set()
        resolver.join()
    assert [(p[0], p[1].get("retry", 0)) for p in transport.published] == [
        ("d0", 0),
        ("d1", 0),
        ("d2", 0),
        ("d0", 1),
        ("d2", 1),
    ]
    assert transport.settled == [(DeliveryRef(1, 7), True, threading.current_thread().name)]
    assert sent == [] and job.settled


def test_a_settlement_runs_on_the_thread_of_the_last_confirm():
    from elasticio_sailor.amqp import DeliveryRef
    from elasticio_sailor.dialects.base import Publication
    from elasticio_sailor.worker import Job, Sent

    worker = _pipelined_worker()
    transport = worker.transport
    sent: list[Sent] = []
    worker._send_all(
        sent,
        [Publication("x", "data", b"d0", {}, kind="data"), Publication("x", "state", b"end", {}, kind="end")],
    )
    stop = threading.Event()
    resolver = threading.Thread(
        target=_resolve_in_turn, args=(transport, {}, stop, True), name="confirming-io"
    )
    resolver.start()
    try:
        job = Job(DeliveryRef(1, 8), b"digest", None)
        execution = type("E", (), {"failed": False, "secrets": []})()
        worker._settle_when_confirmed(job, execution, sent)
    finally:
        stop.set()
        resolver.join()
    assert transport.settled == [(DeliveryRef(1, 8), True, "confirming-io")]


def test_a_nacked_event_is_retried_then_replaced_by_an_error_and_the_message_rejected():
    from elasticio_sailor.amqp import DeliveryRef, PublishNacked
    from elasticio_sailor.dialects.base import Publication
    from elasticio_sailor.worker import Job, Sent

    worker = _pipelined_worker()
    transport = worker.transport
    sent: list[Sent] = []
    worker._send_all(
        sent,
        [Publication("x", "data", b"d0", {}, kind="data"), Publication("x", "data", b"d1", {}, kind="data")],
    )
    nack = PublishNacked("broker refused the data publish")
    stop = threading.Event()
    resolver = threading.Thread(
        target=_resolve_in_turn, args=(transport, {("d0", 0): nack, ("d0", 1): nack, ("d0", 2): nack}, stop)
    )
    resolver.start()
    try:
        job = Job(DeliveryRef(1, 9), b"digest", None)
        execution = type("E", (), {"failed": False, "secrets": []})()
        worker._settle_when_confirmed(job, execution, sent)
    finally:
        stop.set()
        resolver.join()
    bodies = [(p[0], p[1].get("retry", 0)) for p in transport.published]
    assert bodies[:2] == [("d0", 0), ("d1", 0)]
    assert ("d0", 1) in bodies and ("d0", 2) in bodies and ("d1", 1) not in bodies
    assert bodies[-1][0] == "error: broker refused the data publish"
    assert [s[:2] for s in transport.settled] == [(DeliveryRef(1, 9), False)]
