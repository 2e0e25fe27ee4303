"""The worker's own concurrency primitives and shared protocol helpers, without a broker."""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout

import pytest
from elasticio_sailor.amqp import Completion
from elasticio_sailor.dialect import new_uuid, split_routing_key
from elasticio_sailor.settings import SettingsError
from elasticio_sailor.worker import WorkerPool, cpu_affinity

pytestmark = pytest.mark.timeout(30)


def test_new_uuid_is_a_random_uuid4_string():
    ids = [new_uuid() for _ in range(1000)]  # several 4 kB refills
    assert len(set(ids)) == len(ids)
    for text in ids[:300]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
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


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
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
