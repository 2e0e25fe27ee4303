"""Worker benchmark: N messages through RabbitMQ with an action that emits its input.

    .venv/bin/python -m bench.worker [--messages 10000] [--prefetch 10] [--version 1]

Three consumers of the same pre-filled queue, one after the other, on the same broker:
- ``python``: our worker (`python -m elasticio_sailor run`, action ``echo``): decrypt, process, encrypt,
  publish on a confirm channel and wait for the confirm, then ack;
- ``raw``: a bare pika loop (BlockingConnection, confirm channel): consume, publish the same bytes,
  wait for the confirm, ack. No decryption, no component: the limit for one consumer process;
- ``node``: the elastic.io Node sailor 2.7.8 (sailor/tests/interop/node) with an echo action.

Both sailors get ``ELASTICIO_DATA_RATE_LIMIT`` raised to 1e6 (the Node default, 10 per 100 ms, would cap
both at 100 messages/s). Messages/s is measured from the first output message to the last, so process
start-up is not counted. Each consumer runs --repeat times, interleaved, and the median is reported with
the ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elasticio_sailor.testing.amqp import Broker
from elasticio_sailor.testing.elasticio import ElasticioTopology, FakePlatform, encode, worker_env
from elasticio_sailor.testing.node import NODE_COMPONENT, PYTHON_COMPONENT, ensure_node_sailor
from elasticio_sailor.testing.process import WorkerProcess

from bench import at_least_one


def fill(broker: Broker, count: int, version: int) -> None:
    """Publish `count` encrypted elastic.io messages into the input queue (confirmed, so all are there)."""
    channel = broker.connection.channel()
    channel.confirm_delivery()
    payload = "x" * 200
    for i in range(count):
        body = encode(
            {
                "id": f"m-{i}",
                "body": {"i": i, "payload": payload},
                "headers": {},
                "attachments": {},
                "metadata": {},
            },
            version,
        )
        props = pika.BasicProperties(
            headers={"messageId": f"bench-{i}-{time.time_ns()}", "protocolVersion": version},
            content_type="application/json",
            content_encoding="utf8",
        )
        channel.basic_publish(broker.topo.exchange, "in", body, props)
    channel.close()


def measure(broker: Broker, out: str, count: int, timeout: float) -> float:
    """Messages/s from the first output message to the `count`-th, polling the output queue's depth.

    When all of them arrive between two polls (a small --messages), the rate counts from the last poll that
    saw none: a lower bound, never zero.
    """
    start = last_empty = time.monotonic()
    first = None
    while True:
        depth = broker.count(out)
        now = time.monotonic()
        if not depth:
            last_empty = now
        elif first is None:
            first = (now, depth)
        if depth >= count:
            break
        if now > start + timeout:
            raise RuntimeError(f"only {depth} of {count} messages after {timeout:.0f}s")
        broker.connection.sleep(0.01)
    assert first is not None
    if first[1] < count:
        return (count - first[1]) / max(now - first[0], 1e-6)
    return count / max(now - last_empty, 1e-6)


def raw_loop(url: str, queue: str, exchange: str, prefetch: int, stop: threading.Event) -> None:
    """The limit: consume, publish the same bytes on a confirm channel, wait for the confirm, ack."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    consume = connection.channel()
    publish = connection.channel()
    publish.confirm_delivery()
    consume.basic_qos(prefetch_count=prefetch)

    def on_message(ch, method, props, body):
        publish.basic_publish(exchange, "data", body, props)
        ch.basic_ack(method.delivery_tag)

    consume.basic_consume(queue, on_message)
    while not stop.is_set():
        connection.process_data_events(time_limit=0.1)
    connection.close()


def run_one(kind: str, args: argparse.Namespace, node_sailor: Path | None) -> float:
    broker = Broker(ElasticioTopology())
    try:
        out = broker.queue("data", "data")
        with FakePlatform({"config": {}, "snapshot": {}}) as platform:
            fill(broker, args.messages, args.version)
            if kind == "raw":
                stop = threading.Event()
                thread = threading.Thread(
                    target=raw_loop,
                    args=(broker.url, broker.topo.input, broker.topo.exchange, args.prefetch, stop),
                    daemon=True,
                )
                thread.start()
                try:
                    return measure(broker, out, args.messages, args.timeout)
                finally:
                    stop.set()
                    thread.join(10)
            env = worker_env(
                broker,
                platform,
                "echo",
                ELASTICIO_RABBITMQ_PREFETCH_SAILOR=args.prefetch,
                ELASTICIO_PROTOCOL_VERSION=args.version,
                ELASTICIO_DATA_RATE_LIMIT=1_000_000,
                LOG_LEVEL="warn",
                **({"ELASTICIO_SAILOR_CPU_AFFINITY": args.affinity} if args.affinity else {}),
            )
            if kind == "python":
                proc = WorkerProcess(env, cwd=PYTHON_COMPONENT)
            else:
                assert node_sailor is not None
                proc = WorkerProcess(
                    env, cwd=NODE_COMPONENT, cmd=[shutil.which("node") or "node", str(node_sailor)]
                )
            try:
                rate = measure(broker, out, args.messages, args.timeout)
                proc.terminate()
                return rate
            finally:
                proc.kill()
    finally:
        broker.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=at_least_one, default=10_000)
    parser.add_argument("--prefetch", type=int, default=10)
    parser.add_argument("--version", type=int, choices=(1, 2), default=1, help="message protocol version")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per consumer")
    parser.add_argument("--only", choices=("python", "raw", "node"), action="append")
    parser.add_argument(
        "--affinity", help="ELASTICIO_SAILOR_CPU_AFFINITY for our worker (unset: off, unpinned); auto: pinned"
    )
    parser.add_argument(
        "--repeat", type=at_least_one, default=3, help="rounds (interleaved); the median is reported"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    kinds = args.only or ["python", "raw", "node"]
    node_sailor = ensure_node_sailor() if "node" in kinds else None
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.repeat):  # interleaved, so a noisy neighbour hits every consumer alike
        for kind in kinds:
            samples[kind].append(run_one(kind, args, node_sailor))
    rates = {kind: statistics.median(values) for kind, values in samples.items()}
    ratios = {}
    if "python" in rates:
        ratios = {f"python/{k}": rates["python"] / v for k, v in rates.items() if k != "python"}
    if args.json:
        print(
            json.dumps(
                {
                    "messages": args.messages,
                    "prefetch": args.prefetch,
                    "version": args.version,
                    "msg_per_s": {k: round(v, 1) for k, v in rates.items()},
                    "runs": {k: [round(v, 1) for v in vs] for k, vs in samples.items()},
                    "ratios": {k: round(v, 3) for k, v in ratios.items()},
                }
            )
        )
        return 0
    print(
        f"{args.messages} messages, prefetch {args.prefetch}, protocol v{args.version}, "
        f"median of {args.repeat}"
    )
    for kind, rate in rates.items():
        print(f"  {kind:7} {rate:9.0f} msg/s   (runs: {', '.join(f'{v:.0f}' for v in samples[kind])})")
    for name, ratio in ratios.items():
        print(f"  {name:12} {ratio:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
