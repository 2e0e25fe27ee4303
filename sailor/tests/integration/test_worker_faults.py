"""The worker under broker faults: real RabbitMQ, a TCP proxy on loopback the test controls, 1,000+ inputs.

Every test counts outputs (or runs) per input and asserts 0 lost and 0 stuck; each prints a
``FAULT-STATS`` line with its duplicates per 1,000 inputs (run with ``-s`` to see them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pytest
from elasticio_sailor.testing.amqp import Broker, amqp_url
from elasticio_sailor.testing.elasticio import CIPHER, decode, input_message
from elasticio_sailor.testing.oih import DATA_KEY, OihTopology, make_token, orchestrator_message, token_claims
from elasticio_sailor.testing.process import WorkerProcess, start_sailor
from elasticio_sailor.testing.proxy import FaultProxy, proxied_url

TWIN = Path(__file__).resolve().parents[1] / "oih" / "fixtures" / "twin"  # the OIH tests' Python component
AMQP_URL = amqp_url()

pytestmark = pytest.mark.timeout(300)

# pika's "Expected connected socket, but getpeername() failed": a connection reset just after accept
RACE = "getpeername"


@pytest.fixture
def fault_proxy():
    parts = urlsplit(AMQP_URL)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    try:
        yield proxy
    finally:
        proxy.close()


def elasticio_index(_method, props, body) -> int:
    return decode(props, body)["body"]["i"]


class Outputs:
    """Counts the data outputs per input index `i`, consuming a queue on a connection of its own.

    `index(method, properties, body)` reads the index of an output, None for what is not a data output.
    """

    def __init__(self, url: str, queue: str, index: Callable[..., int | None] = elasticio_index) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.counts: Counter[int] = Counter()
        self._index = index
        self.channel.basic_consume(queue, self._on_message, auto_ack=True)

    def _on_message(self, _channel, method, props, body) -> None:
        i = self._index(method, props, body)
        if i is not None:
            self.counts[i] += 1

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.connection.process_data_events(time_limit=0.1)
        return True

    def wait_count(self, inputs: int, timeout: float) -> bool:
        """Until `inputs` different inputs have an output (False after timeout)."""
        return self.wait_for(lambda: len(self.counts) >= inputs, timeout)

    def wait_for_time(self, seconds: float) -> None:
        self.connection.process_data_events(time_limit=seconds)

    def close(self) -> None:
        self.connection.close()


def publish_inputs(broker: Broker, n: int, **data) -> None:
    """n inputs carrying their index `i` and `data`."""
    for i in range(n):
        broker.publish(*input_message({"i": i, **data}))


def emit_i(i: int) -> list:
    return [["data", {"data": {"i": i}}]]


def publish_emitting_inputs(broker: Broker, n: int, sleep: float, shared_ids: int = 0) -> None:
    """n inputs that each sleep, then emit one data message with their index `i`; with shared_ids, each
    run of that many shares one messageId, as the Node sailor emits them (one id per input it processed)."""
    for i in range(n):
        body, headers = input_message({"i": i, "sleep": sleep, "emit": emit_i(i)})
        if shared_ids:
            headers["messageId"] = f"upstream-{i // shared_ids}"
        broker.publish(body, headers)


def wait_until_done(
    progress: Callable[[], int], n: int, queued: Callable[[], int], pump: Callable[[float], None]
) -> None:
    """Until all n inputs made progress, or the input queue is empty and nothing moved for 8 s (bounded)."""
    timeout = 120
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        done = progress()
        if done >= n:
            return
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > 8 and queued() == 0:
            return  # nothing left to deliver and nothing moving: whatever is missing is lost
        pump(0.2)


def input_count(broker: Broker) -> Callable[[], int]:
    return lambda: broker.count(broker.topo.input)


def report(name: str, n: int, counts: Counter[int]) -> tuple[list[int], int]:
    lost = [i for i in range(n) if counts[i] == 0]
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    print(
        f"\nFAULT-STATS {name}: inputs={n} lost={len(lost)} duplicates={duplicates} "
        f"({duplicates * 1000 / n:.1f} per 1,000)"
    )
    return lost, duplicates


def finish(worker: WorkerProcess, broker: Broker) -> None:
    """SIGTERM: exit 0 with nothing left in the input queue (all acked). FAULT_LOG_DIR=dir keeps the log."""
    code = worker.terminate(30)
    if os.environ.get("FAULT_LOG_DIR"):
        shutil.copy(worker.log_path, Path(os.environ["FAULT_LOG_DIR"]) / f"{broker.topo.prefix}.log")
    assert code == 0, worker.logs()[-3000:]
    assert broker.count(broker.topo.input) == 0


def proxied_worker(start_worker, proxy: FaultProxy, broker: Broker, **env) -> WorkerProcess:
    # A short stack_timeout: a timer left behind by an abandoned attempt would fire within the test.
    url = proxied_url(broker.url, proxy.port) + "?stack_timeout=3"
    return start_worker(ELASTICIO_AMQP_URI=url, LOG_LEVEL="info", **env)


def test_inputs_sharing_a_message_id_are_all_processed_across_reconnects(broker, start_worker, fault_proxy):
    """Ten inputs per messageId, as the Node sailor emits them; the connection is reset three times."""
    n = 1000
    outputs = Outputs(broker.url, broker.queue("data", "data"))
    worker = proxied_worker(start_worker, fault_proxy, broker, ELASTICIO_RABBITMQ_PREFETCH_SAILOR=10)
    publish_emitting_inputs(broker, n, sleep=0.02, shared_ids=10)
    for reset_at in (250, 500, 750):
        assert outputs.wait_count(reset_at, 60), worker.logs()[-3000:]
        fault_proxy.reset_all()
    wait_until_done(lambda: len(outputs.counts), n, input_count(broker), outputs.wait_for_time)
    lost, _ = report("shared-messageIds-3-resets", n, outputs.counts)
    assert lost == [], f"{len(lost)} inputs lost, e.g. {lost[:10]}"
    assert worker.logs().count("re-established") >= 3
    finish(worker, broker)
    outputs.close()


def race_hits(worker: WorkerProcess) -> int:
    """How often the worker recovered from pika's race (one "I/O loop error" line each)."""
    records = worker.log_records()
    return sum(1 for r in records if r["message"].startswith("AMQP I/O loop error") and RACE in r["message"])


def test_resets_and_an_accept_then_reset_storm_lose_nothing_and_never_stall(
    broker, start_worker, fault_proxy
):
    """Three resets mid-stream, then the proxy resets every connection at accept until pika's race was hit."""
    n = 1200
    outputs = Outputs(broker.url, broker.queue("data", "data"))
    fast_reconnects = {"ELASTICIO_AMQP_RECONNECT_TIMEOUT": 1, "ELASTICIO_SAILOR_RECONNECT_MAX_DELAY": 5}
    worker = proxied_worker(
        start_worker, fault_proxy, broker, ELASTICIO_RABBITMQ_PREFETCH_SAILOR=10, **fast_reconnects
    )
    publish_emitting_inputs(broker, n, sleep=0.01)
    for reset_at in (200, 400, 600):
        assert outputs.wait_count(reset_at, 60), worker.logs()[-3000:]
        fault_proxy.reset_all()
    assert outputs.wait_count(800, 60), worker.logs()[-3000:]
    fault_proxy.mode = "reset"
    fault_proxy.reset_all()
    deadline = time.monotonic() + 60
    hits = 0
    while time.monotonic() < deadline and worker.proc.poll() is None and hits < 2:
        outputs.wait_for_time(1.0)
        hits = race_hits(worker)
    attempts = fault_proxy.reset_on_accept
    fault_proxy.mode = "pass"
    print(f"\naccept-then-reset phase: {attempts} connections reset at accept, race hit {hits} times")
    if worker.proc.poll() is not None:  # it gave up: with a non-zero exit, and a new one finishes
        assert worker.proc.returncode != 0
        worker = proxied_worker(start_worker, fault_proxy, broker, ELASTICIO_RABBITMQ_PREFETCH_SAILOR=10)
    assert hits >= 1, f"the race was not hit in {attempts} resets at accept"
    wait_until_done(lambda: len(outputs.counts), n, input_count(broker), outputs.wait_for_time)
    lost, _ = report("3-resets+accept-reset-storm", n, outputs.counts)
    assert lost == [], f"{len(lost)} inputs lost, e.g. {lost[:10]}"
    assert fault_proxy.max_live == 1, "never two connections at once"
    assert fault_proxy.live == 1
    fault_proxy.mode = "reset"  # SIGTERM still works in the middle of a reconnect storm
    fault_proxy.reset_all()
    time.sleep(1.0)
    assert worker.terminate(30) == 0, worker.logs()[-3000:]
    # A duplicate still unacked at that reset is back in the queue: the next worker takes it.
    fault_proxy.mode = "pass"
    successor = proxied_worker(start_worker, fault_proxy, broker, ELASTICIO_RABBITMQ_PREFETCH_SAILOR=10)
    outputs.wait_for(lambda: broker.count(broker.topo.input) == 0, 30)
    finish(successor, broker)
    outputs.close()


def test_sigkill_mid_stream_and_a_restart_lose_nothing(broker, start_worker):
    n = 1000
    outputs = Outputs(broker.url, broker.queue("data", "data"))
    first = start_worker(ELASTICIO_RABBITMQ_PREFETCH_SAILOR=10, LOG_LEVEL="info")
    publish_emitting_inputs(broker, n, sleep=0.005)
    assert outputs.wait_count(400, 60), first.logs()[-3000:]
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    second = start_worker(ELASTICIO_RABBITMQ_PREFETCH_SAILOR=10, LOG_LEVEL="info")
    wait_until_done(lambda: len(outputs.counts), n, input_count(broker), outputs.wait_for_time)
    lost, _ = report("sigkill+restart", n, outputs.counts)
    assert lost == [], f"{len(lost)} inputs lost, e.g. {lost[:10]}"
    finish(second, broker)
    outputs.close()


def test_a_redelivery_of_a_completed_run_is_not_run_again(broker, start_worker, fault_proxy, tmp_path: Path):
    """The connection is reset and kept away while runs complete: their acks cannot reach the broker, so it
    redelivers them; each input still runs exactly once (runs are counted in a file, not on the broker)."""
    n = 1000
    runs_file = tmp_path / "runs"
    runs_file.touch()

    def runs() -> Counter[int]:
        return Counter(int(line) for line in runs_file.read_text().split())

    worker = proxied_worker(start_worker, fault_proxy, broker, ELASTICIO_RABBITMQ_PREFETCH_SAILOR=10)
    publish_inputs(broker, n, sleep=0.02, append_to=str(runs_file))
    deadline = time.monotonic() + 60
    for reset_at in (250, 500, 750):
        while len(runs()) < reset_at and time.monotonic() < deadline:
            time.sleep(0.02)
        fault_proxy.mode = "reset"
        fault_proxy.reset_all()
        time.sleep(1.0)  # the ten runs in flight complete meanwhile; their acks cannot be sent
        fault_proxy.mode = "pass"
    wait_until_done(lambda: len(runs()), n, input_count(broker), time.sleep)
    counts = runs()
    lost, duplicates = report("redelivery-of-completed-runs", n, counts)
    assert lost == [], f"{len(lost)} inputs lost, e.g. {lost[:10]}\n{worker.logs()[-5000:]}"
    finish(worker, broker)
    assert duplicates == 0, [i for i, c in counts.items() if c > 1][:10]
    assert "redelivery of a message already processed" in worker.logs()


def test_sigterm_with_prefetch_4_and_slow_calls_leaves_each_input_done_or_queued(broker, start_worker):
    n = 1000
    outputs = Outputs(broker.url, broker.queue("data", "data"))
    worker = start_worker(ELASTICIO_RABBITMQ_PREFETCH_SAILOR=4, LOG_LEVEL="info")
    publish_emitting_inputs(broker, n, sleep=0.05)
    assert outputs.wait_count(40, 60), worker.logs()[-3000:]
    assert worker.terminate(30) == 0, worker.logs()[-3000:]
    outputs.wait_for_time(1.0)
    left = broker.count(broker.topo.input)
    queued = [CIPHER.decrypt(raw, 1)["body"]["i"] for _, _, raw in broker.get_all(broker.topo.input, left)]
    done = set(outputs.counts)
    print(f"\nFAULT-STATS sigterm-prefetch-4: inputs={n} processed={len(done)} queued={len(queued)}")
    assert done.isdisjoint(queued), "an input was both processed (acked) and left in the queue"
    assert done | set(queued) == set(range(n)) and len(queued) == len(set(queued))
    assert all(c == 1 for c in outputs.counts.values())
    outputs.close()


def test_oih_inputs_sharing_a_message_id_are_all_processed_across_reconnects(fault_proxy, tmp_path: Path):
    """The same guarantee in the OIH dialect: ten inputs per messageId, the connection reset three times."""
    n = 1000
    broker = Broker(OihTopology())
    env = broker.topo.env(services_url=None)
    env.update(
        ELASTICIO_AMQP_URI=proxied_url(AMQP_URL, fault_proxy.port), ELASTICIO_RABBITMQ_PREFETCH_SAILOR="10"
    )
    worker = start_sailor(env, TWIN, tmp_path / "worker.log")
    outputs = Outputs(
        AMQP_URL,
        broker.topo.capture_queue,
        lambda method, _props, body: (
            json.loads(body)["data"]["i"] if method.routing_key == DATA_KEY else None
        ),
    )
    try:
        broker.wait_consuming(worker)
        token = make_token(**token_claims(broker.topo.flow_id, broker.topo.step_id, "slowEcho"))
        for i in range(n):
            broker.publish(
                *orchestrator_message(
                    broker.topo,
                    {"data": {"i": i, "seconds": 0.02}},
                    token=token,
                    headers={"messageId": f"up-{i // 10}"},
                )
            )
        for reset_at in (250, 500, 750):
            assert outputs.wait_count(reset_at, 60), worker.logs()[-3000:]
            fault_proxy.reset_all()
        queued = lambda: broker.count(broker.topo.input)  # noqa: E731
        wait_until_done(lambda: len(outputs.counts), n, queued, outputs.wait_for_time)
        lost, _ = report("oih-shared-messageIds-3-resets", n, outputs.counts)
        assert lost == [], f"{len(lost)} inputs lost, e.g. {lost[:10]}"
    finally:
        code = worker.stop()
        left = broker.count(broker.topo.input)
        outputs.close()
        broker.close()
    assert code == 0 and left == 0, worker.logs()[-3000:]
