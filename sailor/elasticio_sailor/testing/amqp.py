"""One AMQP helper for both dialects: a pika connection that declares a topology with unique names, feeds it,
reads what the worker published, and deletes everything it declared again (the broker may be shared)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pika

if TYPE_CHECKING:
    from .process import WorkerProcess


def amqp_url() -> str:
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def unique_name(role: str) -> str:
    """A name no other test (or test run) on the same broker uses; `role` says what it is for."""
    return f"test-{role}-{uuid.uuid4().hex[:10]}"


class Topology(Protocol):
    """A dialect's step on the broker: `elasticio.ElasticioTopology` or `oih.OihTopology`."""

    prefix: str  # unique per topology; every name below starts with it or contains it
    exchange: str  # where `Broker.publish` sends by default
    input: str  # the step's input queue
    input_key: str  # the routing key that reaches `input`
    properties: dict[str, Any]  # default message properties of an input message
    # OIH only: capture_queue, dead_queue and done_key, read by drain, dead_letters and wait_done

    def declare(self, broker: Broker) -> None: ...


@dataclass
class Captured:
    """One message the runtime published, as read from a capture queue."""

    exchange: str
    routing_key: str
    headers: dict[str, Any]
    body: bytes
    properties: dict[str, Any]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Broker:
    """A connection to the broker with one topology declared on it; a context manager that cleans up."""

    def __init__(self, topology: Topology, url: str | None = None) -> None:
        self.topo = topology
        self.url = url or amqp_url()
        self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
        self.channel = self.connection.channel()
        self._exchanges: list[str] = []
        self._queues: list[str] = []
        self.captured: list[Captured] = []
        self.dead: list[tuple[dict, bytes]] = []
        try:
            topology.declare(self)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- declaring (everything declared here is deleted by close) ----------------------------------
    def declare_exchange(self, name: str) -> str:
        self.channel.exchange_declare(name, "topic", durable=False, auto_delete=False)
        self._exchanges.append(name)
        return name

    def declare_queue(
        self, name: str, *bindings: tuple[str, str], arguments: dict[str, Any] | None = None
    ) -> str:
        """A queue bound with each (exchange, routing key)."""
        self.channel.queue_declare(name, durable=False, auto_delete=False, arguments=arguments)
        self._queues.append(name)
        for exchange, key in bindings:
            self.channel.queue_bind(name, exchange, routing_key=key)
        return name

    def queue(
        self, suffix: str, *keys: str, arguments: dict[str, Any] | None = None, exchange: str | None = None
    ) -> str:
        """An observer queue `<prefix>:<suffix>` bound with `keys` on `exchange` (or the topology's)."""
        exchange = exchange or self.topo.exchange
        name = f"{self.topo.prefix}:{suffix}"
        return self.declare_queue(name, *((exchange, key) for key in keys), arguments=arguments)

    def close(self) -> None:
        try:
            if self.connection.is_open:
                for name in self._queues:
                    self.channel.queue_delete(name)
                for name in self._exchanges:
                    self.channel.exchange_delete(name)
        finally:
            if self.connection.is_open:
                self.connection.close()

    # --- feeding and reading ----------------------------------------------------------------------
    def publish(
        self,
        body: bytes,
        headers: dict[str, Any] | None = None,
        routing_key: str | None = None,
        exchange: str | None = None,
        **properties: Any,
    ) -> None:
        """Publish to the step's input unless told otherwise, with the dialect's default properties."""
        props = pika.BasicProperties(headers=headers or {}, **{**self.topo.properties, **properties})
        key = self.topo.input_key if routing_key is None else routing_key
        self.channel.basic_publish(exchange or self.topo.exchange, key, body, props)

    def get(self, queue: str, timeout: float = 15.0) -> tuple[Any, pika.BasicProperties, bytes]:
        """The next message of a queue (acked), waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is not None:
                return method, props, body
            if time.monotonic() > deadline:
                raise AssertionError(f"no message on {queue} within {timeout}s")
            self.connection.sleep(0.05)

    def get_all(self, queue: str, count: int, timeout: float = 30.0) -> list[tuple[Any, Any, bytes]]:
        deadline = time.monotonic() + timeout
        return [self.get(queue, max(0.1, deadline - time.monotonic())) for _ in range(count)]

    def count(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def wait_consuming(self, worker: WorkerProcess, timeout: float = 30.0) -> None:
        """Wait until a consumer is on the input queue; fails at once if the worker died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not worker.alive():
                raise AssertionError(f"runtime exited early:\n{worker.logs()[-4000:]}")
            if self.channel.queue_declare(self.topo.input, passive=True).method.consumer_count:
                return
            self.connection.sleep(0.1)
        raise AssertionError(f"runtime never consumed:\n{worker.logs()[-4000:]}")

    # --- a topology with one capture queue and one dead-letter queue (OIH) ----------------------------
    def drain(self) -> list[Captured]:
        """Everything published to the capture queue so far, accumulated."""
        while True:
            method, props, body = self.channel.basic_get(self.topo.capture_queue, auto_ack=True)
            if method is None:
                return self.captured
            self.captured.append(
                Captured(
                    exchange=method.exchange,
                    routing_key=method.routing_key,
                    headers=dict(props.headers or {}),
                    body=body,
                    properties={
                        "content_type": props.content_type,
                        "content_encoding": props.content_encoding,
                        "delivery_mode": props.delivery_mode,
                        "expiration": props.expiration,
                    },
                )
            )

    def wait_for(self, predicate: Callable[[list[Captured]], bool], timeout: float = 20.0) -> list[Captured]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.drain()):
                return self.captured
            self.connection.sleep(0.05)
        seen = [(c.exchange, c.routing_key) for c in self.captured]
        raise AssertionError(f"timed out; captured so far: {seen}")

    def for_input(self, message_id: str) -> list[Captured]:
        """Everything published for one input message (the runtimes set parentMessageId to its id)."""
        return [c for c in self.drain() if c.headers.get("parentMessageId") == message_id]

    def wait_done(self, message_id: str, timeout: float = 20.0) -> list[Captured]:
        """Wait for the input's "done" event (topology.done_key), then return what was published for it."""
        done = self.topo.done_key
        self.wait_for(lambda _: any(c.routing_key == done for c in self.for_input(message_id)), timeout)
        return self.for_input(message_id)

    def dead_letters(self) -> list[tuple[dict, bytes]]:
        """Everything dead-lettered (rejected without requeue) so far, accumulated."""
        while True:
            method, props, body = self.channel.basic_get(self.topo.dead_queue, auto_ack=True)
            if method is None:
                return self.dead
            self.dead.append((dict(props.headers or {}), body))

    def dead_ids(self) -> list[str]:
        return [str(h.get("messageId")) for h, _ in self.dead_letters()]

    def leftover_ids(self) -> list[str]:
        """messageIds still in the input queue (unsettled once the runtime has stopped); consumes them."""
        out = []
        while True:
            method, props, _ = self.channel.basic_get(self.topo.input, auto_ack=True)
            if method is None:
                return out
            out.append(str((props.headers or {}).get("messageId")))

    def settlement(self, message_id: str, grace: float = 0.5) -> str:
        """ "rejected" when the input was dead-lettered within `grace` seconds, else "acked"."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if message_id in self.dead_ids():
                return "rejected"
            self.connection.sleep(0.05)
        return "rejected" if message_id in self.dead_ids() else "acked"
