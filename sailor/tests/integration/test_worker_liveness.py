"""No silent death: the worker recovers from an exception out of pika's I/O loop, or exits non-zero.

The worker runs in this process here (real broker, real component, fake platform API), so that the
test can make pika's loop raise, as its getpeername race does, at a moment the test chooses; the race
itself, on real connections, is in test_worker_faults.py.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pika.exceptions
import pytest
from elasticio_sailor import worker as worker_module
from elasticio_sailor.amqp import MAX_LOOP_ERRORS, describe
from elasticio_sailor.dialects import select_dialect
from elasticio_sailor.testing.elasticio import decode, input_message, worker_env
from elasticio_sailor.testing.proxy import FaultProxy, proxied_url
from elasticio_sailor.worker import SettledRuns, Worker, body_digest
from pika.adapters.utils import connection_workflow

from .conftest import FIXTURE

pytestmark = pytest.mark.timeout(120)

# Its own component: the usual fixture's top-level package is `lib`, which in pytest is the connector's.
INPROCESS_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "inprocess_component"


@pytest.fixture
def fault_proxy(broker):
    parts = urlsplit(broker.url)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    try:
        yield proxy
    finally:
        proxy.close()


class InProcessWorker:
    """`Worker.run()` on a thread of this process; `code` is its exit code once it returned."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.worker.run()

    def wait_until(self, condition, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def raise_in_io_loop(self, exc: BaseException, times: int = 1) -> None:
        def boom() -> None:
            raise exc

        for _ in range(times):
            self.worker.transport._ioloop.add_callback_threadsafe(boom)

    def stop(self, timeout: float = 20.0) -> int | None:
        self.worker.request_stop()
        self.thread.join(timeout)
        return self.code


@pytest.fixture
def in_process(broker, platform, fault_proxy, monkeypatch):
    started: list[InProcessWorker] = []

    def start(**overrides) -> InProcessWorker:
        env = worker_env(
            broker, platform, ELASTICIO_AMQP_URI=proxied_url(broker.url, fault_proxy.port), **overrides
        )
        monkeypatch.chdir(INPROCESS_FIXTURE)
        runner = InProcessWorker(Worker(select_dialect(env)))
        started.append(runner)
        assert runner.wait_until(lambda: runner.worker.transport.consuming), "worker never consumed"
        return runner

    yield start
    for runner in started:
        if runner.thread.is_alive():
            runner.stop(5)
        runner.worker.transport.close(5)


def race_error() -> ValueError:
    return ValueError("Expected connected socket, but getpeername() failed: error=OSError(107); (injected)")


def test_an_exception_out_of_the_io_loop_abandons_that_connection_and_the_worker_goes_on(
    broker, fault_proxy, in_process
):
    out = broker.queue("data", "data")
    runner = in_process()
    transport = runner.worker.transport
    first = transport.generation
    runner.raise_in_io_loop(race_error())
    assert runner.wait_until(lambda: transport.generation > first and transport.consuming), "no recovery"
    broker.publish(*input_message({"echo": True, "n": 1}))
    assert decode(*broker.get(out)[1:])["body"]["data"]["n"] == 1
    assert fault_proxy.max_live == 1 and fault_proxy.live == 1, "the abandoned connection was closed first"
    assert runner.stop() == 0


def test_when_the_io_thread_ends_the_worker_exits_1_within_seconds(broker, in_process):
    out = broker.queue("data", "data")
    runner = in_process()
    broker.publish(*input_message({"sleep": 1.0, "emit": [["data", {"data": {"n": 1}}]]}))
    assert runner.wait_until(lambda: runner.worker.processed == 0 and runner.worker._running), "not started"
    runner.raise_in_io_loop(race_error(), times=MAX_LOOP_ERRORS + 1)  # in a row: the I/O thread gives up
    assert runner.wait_until(lambda: runner.code is not None, 10), "the worker stayed alive without I/O"
    assert runner.code == 1
    assert runner.worker.transport.failed
    healthy, reason = runner.worker.health()
    assert not healthy and "I/O thread ended" in reason
    time.sleep(1.5)  # the run in flight cannot publish: it gives up instead of waiting forever
    assert runner.worker.processed == 1
    assert broker.count(out) == 0
    # Its delivery was never acked: it is back in the queue once the process (here: connection) is gone.


def test_a_stuck_io_loop_makes_the_watchdog_exit_1(in_process, monkeypatch):
    monkeypatch.setattr(worker_module, "IO_STALL_LIMIT", 1.5)
    runner = in_process()
    runner.worker.transport._ioloop.add_callback_threadsafe(lambda: time.sleep(4))
    assert runner.wait_until(lambda: runner.code is not None, 10), "the watchdog did not notice"
    assert runner.code == 1


def test_a_connection_without_our_consumer_makes_the_watchdog_exit_1(in_process, monkeypatch):
    monkeypatch.setattr(worker_module, "CONSUMER_GRACE", 1.0)
    runner = in_process()
    transport = runner.worker.transport

    def lose_the_consumer() -> None:  # as if a consume-ok never came: connected, consuming nothing
        transport._consuming = False

    transport._ioloop.add_callback_threadsafe(lose_the_consumer)
    assert runner.wait_until(lambda: runner.code is not None, 10), "the watchdog did not notice"
    assert runner.code == 1 and transport.ready


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_answers_on_the_opt_in_port(broker, platform, start_worker):
    port = free_port()
    worker = start_worker(ELASTICIO_SAILOR_HEALTH_PORT=port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        assert answer.status == 200
        assert json.loads(answer.read()) == {"status": "ok", "reason": "consuming"}
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    assert missing.value.code == 404
    assert worker.terminate() == 0
    bad = subprocess.run(
        [sys.executable, "-m", "elasticio_sailor", "run"],
        cwd=FIXTURE,
        env=worker_env(broker, platform, ELASTICIO_SAILOR_HEALTH_PORT="80x"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 1
    assert "ELASTICIO_SAILOR_HEALTH_PORT must be a whole number from 1 to 65535, not '80x'" in bad.stderr


def test_a_failed_connect_says_why_in_one_line_per_attempt(broker, platform):
    env = worker_env(broker, platform, ELASTICIO_AMQP_URI="amqp://guest:guest@127.0.0.1:1/%2F")
    done = subprocess.run(
        [sys.executable, "-m", "elasticio_sailor", "run"],
        cwd=FIXTURE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    retries = [r["message"] for r in records if "reconnecting in" in r["message"]]
    assert len(retries) == 3
    assert all("(ConnectionRefusedError: [Errno 111] Connection refused)" in m for m in retries), retries
    pika_lines = [r for r in records if r["name"].startswith("pika")]
    assert len(pika_lines) <= 4, [r["message"] for r in pika_lines]  # four attempts: one line each at most
    assert all("\n" not in r["message"] and "exception" not in r for r in pika_lines)


def test_describe_finds_the_innermost_cause():
    refused = ConnectionRefusedError(111, "Connection refused")
    wrapped = pika.exceptions.AMQPConnectionError(
        connection_workflow.AMQPConnectionWorkflowFailed(
            [connection_workflow.AMQPConnectorSocketConnectError(refused)]
        )
    )
    assert str(wrapped) == ""  # what the log line used to show
    assert describe(wrapped) == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert describe(race_error()).startswith("ValueError: Expected connected socket")


def test_settled_runs_answer_one_redelivery_each_over_a_later_connection_only():
    runs = SettledRuns(limit=3, ttl=100)
    a, b = body_digest(b"a"), body_digest(b"b")
    runs.add(a, generation=1, ack=True, now=0)
    runs.add(a, generation=1, ack=False, now=1)
    assert runs.take(a, generation=1, now=2) is None, "same connection: not a redelivery of ours"
    assert runs.take(b, generation=2, now=2) is None, "another body: never"
    assert runs.take(a, generation=2, now=2).ack is True
    assert runs.take(a, generation=2, now=2).ack is False
    assert runs.take(a, generation=2, now=2) is None, "each run answers one redelivery"
    runs.add(a, 1, True, now=0)
    runs.add(b, 1, True, now=1)
    runs.add(b, 1, True, now=2)
    runs.add(b, 1, True, now=3)  # over the limit: the oldest is forgotten (a duplicate at worst)
    assert runs.take(a, 2, now=4) is None
    runs.add(a, 1, True, now=10)
    assert runs.take(a, 2, now=200) is None, "too old"
