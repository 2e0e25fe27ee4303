"""The AMQP worker against the real RabbitMQ, with a fake platform API, as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from elasticio_sailor.testing.amqp import Broker
from elasticio_sailor.testing.elasticio import API_KEY, CIPHER, PASSWORD, decode, input_message, worker_env
from elasticio_sailor.testing.proxy import FaultProxy, proxied_url

from .conftest import FIXTURE

pytestmark = pytest.mark.timeout(120)


def data_queue(broker: Broker) -> str:
    return broker.queue("data", "data")


@pytest.mark.parametrize("version", [1, 2])
def test_round_trip_of_every_emit_kind(broker, platform, start_worker, version):
    """data, snapshot, updateSnapshot, updateKeys, httpReply and error, read back and decrypted."""
    out = {kind: broker.queue(kind, kind) for kind in ("data", "snapshot", "error", "reply", "other", "dead")}
    broker.channel.queue_bind(out["other"], broker.topo.exchange, "custom.key")
    worker = start_worker(ELASTICIO_PROTOCOL_VERSION=version)
    emits = [
        ["data", "$seen"],
        [
            "data",
            {"data": {"n": 2}, "id": "fixed-id", "headers": {"X-EIO-Routing-Key": "custom.key", "h": 1}},
        ],
        ["snapshot", {"cursor": 5}],
        ["updateSnapshot", {"page": 2}],
        ["updateKeys", {"access_token": "new-token-value"}],
        ["httpReply", {"statusCode": 201, "body": {"ok": True}, "headers": {"x-a": "b"}}],
        ["error", {"name": "ValidationError", "message": "field x is bad"}],
    ]
    body, headers = input_message(
        {"emit": emits, "ü": "wörld"}, version, metadata={"m": 1}, passthrough={"step_0": {"body": {"p": 0}}}
    )
    headers.update({"reply_to": "reply", "x-eio-meta-Trace": "trace-1"})
    broker.publish(body, headers)

    _, props, raw = broker.get(out["data"])
    seen = decode(props, raw)
    h = props.headers
    assert h["protocolVersion"] == version
    assert h["parentMessageId"] == headers["messageId"] and h["messageId"] != headers["messageId"]
    assert h["threadId"] == headers["threadId"]
    assert (h["execId"], h["taskId"], h["stepId"], h["function"], h["compId"], h["userId"]) == (
        "exec-1",
        "flow-1",
        "step_1",
        "script",
        "comp-1",
        "user-1",
    )
    assert h["x-eio-meta-trace"] == "trace-1"
    assert isinstance(h["start"], int) and isinstance(h["end"], int) and h["end"] >= h["start"]
    assert props.content_type == "application/json" and props.content_encoding == "utf8"
    assert set(seen) >= {"body", "headers", "attachments", "metadata"}
    got = seen["body"]
    assert got["data"] == {"emit": emits, "ü": "wörld"}
    assert got["metadata"] == {"m": 1}
    assert got["headers"]["reply_to"] == "reply"
    assert got["passthrough"] == {"step_0": {"body": {"p": 0}}}
    assert got["cfg"] == {"region": "eu", "_account": "acc-1"}
    assert got["snapshot"] == {"cursor": 1}

    _, props2, raw2 = broker.get(out["other"])
    second = decode(props2, raw2)
    assert second["id"] == "fixed-id" and second["body"] == {"n": 2}
    assert second["headers"] == {"h": 1}, "x-eio-routing-key is removed before encrypting"
    assert props2.headers["messageId"] == "fixed-id"
    assert props2.headers["parentMessageId"] == headers["messageId"]

    _, sp1, snap1 = broker.get(out["snapshot"])
    _, sp2, snap2 = broker.get(out["snapshot"])
    assert json.loads(snap1) == {"cursor": 5} and sp1.headers["snapshotEvent"] == "snapshot"
    assert json.loads(snap2) == {"page": 2} and sp2.headers["snapshotEvent"] == "updateSnapshot"

    _, rp, reply = broker.get(out["reply"])
    # httpReply is emitted after updateKeys: its account update is done by now.
    account_calls = [r for r in platform.requests if r["method"] == "PUT"]
    assert account_calls == [
        {
            "method": "PUT",
            "path": "/v1/accounts/acc-1",
            "body": {"keys": {"access_token": "new-token-value"}},
            "auth_ok": True,
        }
    ]
    assert rp.headers["protocolVersion"] == 1
    assert CIPHER.decrypt(reply, 1) == {"statusCode": 201, "body": {"ok": True}, "headers": {"x-a": "b"}}
    _, ep_reply, error_reply = broker.get(out["reply"])
    assert ep_reply.headers["x-eio-error-response"] is True
    assert CIPHER.decrypt(error_reply, 1)["message"] == "field x is bad"

    _, ep, err_raw = broker.get(out["error"])
    err = json.loads(err_raw)
    error = CIPHER.decrypt(err["error"].encode(), 1)
    assert list(error)[:3] == ["name", "message", "stack"]
    assert (error["name"], error["message"]) == ("ValidationError", "field x is bad")
    if version == 1:
        assert err["errorInput"] == body.decode()
    assert CIPHER.decrypt(err["errorInput"].encode(), 1)["body"]["ü"] == "wörld"
    assert isinstance(ep.headers["end"], int)

    # An error was emitted, so the input is dead-lettered after everything above was published.
    assert broker.get(out["dead"])[2] == body
    assert worker.terminate() == 0
    assert broker.count(broker.topo.input) == 0
    assert API_KEY not in worker.logs() and "tok-secret-value" not in worker.logs()


def test_exception_is_published_before_the_message_is_dead_lettered(broker, start_worker):
    observed = broker.queue("observe", "error", "dead")
    worker = start_worker()
    body, headers = input_message({"raise": "kaboom with tok-secret-value inside"})
    broker.publish(body, headers)
    _, _, first = broker.get(observed)
    _, p2, second = broker.get(observed)
    error = CIPHER.decrypt(json.loads(first)["error"].encode(), 1)
    assert error["name"] == "RuntimeError" and "kaboom" in error["message"]
    assert "tok-secret-value" not in error["message"], "credential values are redacted"
    assert "Traceback" in error["stack"]
    assert second == body, "then the input itself arrives by dead-lettering"
    assert p2.headers["x-death"][0]["reason"] == "rejected"
    # The component's failure is logged as one JSON line carrying the message's ids, without the secret.
    failure = [r for r in worker.log_records() if r["level"] == "error" and "kaboom" in r["message"]]
    assert failure, worker.logs()[-3000:]
    assert failure[0]["messageId"] == headers["messageId"] and failure[0]["threadId"] == headers["threadId"]
    assert (failure[0]["execId"], failure[0]["stepId"]) == ("exec-1", "step_1")
    assert "tok-secret-value" not in worker.logs()


def test_rebound_doubles_expiration_then_hits_the_limit(broker, start_worker):
    observed = broker.queue("rebounds-seen", "rebound")
    errors = broker.queue("error", "error")
    # Rebound queue: expired messages return to the input queue, as on the platform.
    broker.queue(
        "rebounds",
        "rebound",
        arguments={"x-dead-letter-exchange": broker.topo.exchange, "x-dead-letter-routing-key": "in"},
    )
    start_worker(ELASTICIO_REBOUND_LIMIT=2, ELASTICIO_REBOUND_INITIAL_EXPIRATION=200)
    body, headers = input_message({"emit": [["rebound", "try later"]]})
    broker.publish(body, headers, priority=3)
    _, p1, b1 = broker.get(observed)
    _, p2, b2 = broker.get(observed)
    assert b1 == body and b2 == body, "the original bytes are re-sent"
    assert (p1.expiration, p2.expiration) == ("200", "400")
    assert (p1.headers["reboundIteration"], p2.headers["reboundIteration"]) == (1, 2)
    assert p1.headers["reboundReason"] == "try later"
    assert p1.headers["messageId"] == headers["messageId"] and p1.priority == 3, "original properties kept"
    _, _, err = broker.get(errors)
    assert CIPHER.decrypt(json.loads(err)["error"].encode(), 1)["message"] == "Rebound limit exceeded"
    time.sleep(0.5)
    assert broker.count(observed) == 0


def test_prefetch_four_runs_four_slow_messages_at_once(broker, start_worker):
    out = data_queue(broker)
    start_worker(ELASTICIO_RABBITMQ_PREFETCH_SAILOR=4)
    t0 = time.monotonic()
    for _ in range(4):
        broker.publish(*input_message({"sleep": 1.5, "echo": True}))
    results = [decode(p, b)["body"] for _, p, b in broker.get_all(out, 4, 20)]
    elapsed = time.monotonic() - t0
    assert max(r["started"] for r in results) < min(r["finished"] for r in results), "all four overlapped"
    assert len({r["thread"] for r in results}) == 4
    assert elapsed < 4.5, f"4 x 1.5s took {elapsed:.1f}s"


def test_heartbeats_continue_during_a_slow_call(broker, start_worker):
    out = data_queue(broker)
    uri = broker.url + ("&" if "?" in broker.url else "?") + "heartbeat=1"
    worker = start_worker(ELASTICIO_AMQP_URI=uri)
    broker.publish(*input_message({"sleep": 3.5, "echo": True}))
    broker.publish(*input_message({"echo": True}))
    first, second = (decode(p, b)["body"] for _, p, b in broker.get_all(out, 2, 20))
    assert first["finished"] - first["started"] >= 3.4
    assert second["data"] == {"echo": True}
    logs = worker.logs()
    assert "reconnecting" not in logs and "connection lost" not in logs.lower(), logs[-2000:]
    assert connection_heartbeats("container-" + broker.topo.prefix) == ["1"], (
        "the 1 s heartbeat was negotiated"
    )
    assert worker.terminate() == 0
    assert broker.count(broker.topo.input) == 0


def test_sigterm_finishes_messages_in_flight(broker, start_worker):
    out = data_queue(broker)
    worker = start_worker(ELASTICIO_RABBITMQ_PREFETCH_SAILOR=3)
    for i in range(5):
        broker.publish(*input_message({"sleep": 1.0, "echo": True, "i": i}))
    time.sleep(0.5)  # three are in process() now, two wait in the queue
    assert worker.terminate(timeout=20) == 0
    results = [decode(p, b)["body"]["data"]["i"] for _, p, b in broker.get_all(out, 3, 5)]
    assert sorted(results) == [0, 1, 2]
    assert broker.count(out) == 0
    assert broker.count(broker.topo.input) == 2, (
        "the unstarted ones stay queued, none was lost or acked unprocessed"
    )
    assert "Received SIGTERM" in worker.logs()


def _worker_connections(container_id: str, column: str) -> list[str]:
    """`column` of our worker's broker connection(s), found by connection name (rabbitmqctl)."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "--no-table-headers", "list_connections", column, "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [
        line.split("\t")[0]
        for line in listing.splitlines()
        if '{"connection_name","' in line and f'-{container_id}"}}' in line
    ]


def connection_heartbeats(container_id: str) -> list[str]:
    return _worker_connections(container_id, "timeout")


def close_worker_connections(container_id: str) -> int:
    """Close our worker's broker connection(s) the way an operator would: rabbitmqctl close_connection."""
    pids = _worker_connections(container_id, "pid")
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", pid, "closed by test"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return len(pids)


def test_broker_closing_the_connection_loses_no_message(broker, start_worker):
    out = data_queue(broker)
    worker = start_worker(ELASTICIO_RABBITMQ_PREFETCH_SAILOR=2)
    n = 40  # 6 s of work: rabbitmqctl (slow on a loaded machine) closes the connection well before the end
    for i in range(n):
        broker.publish(*input_message({"sleep": 0.3, "emit": [["data", {"data": {"i": i}}]]}))
    outputs = [decode(*broker.get(out, 10)[1:])["body"]["i"]]
    # Two messages are in process() when the broker drops the connection.
    assert close_worker_connections("container-" + broker.topo.prefix) == 1
    deadline = time.monotonic() + 60
    while set(outputs) != set(range(n)) and time.monotonic() < deadline:
        outputs.append(decode(*broker.get(out, 30)[1:])["body"]["i"])
    assert set(outputs) == set(range(n)), "every message is processed at least once"
    deadline = time.monotonic() + 20
    while broker.count(broker.topo.input) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert broker.count(broker.topo.input) == 0
    worker.wait_for_log("re-established", 30)
    logs = worker.logs()
    # The in-flight ones finished on the new connection and settled their redeliveries: no duplicates.
    assert "redelivery of a message" in logs
    assert worker.terminate() == 0
    # A publish the broker routed but never confirmed before the drop is sent again, so allow one
    # duplicate per message in flight; redeliveries themselves are not processed again.
    assert len(outputs) + broker.count(out) <= n + 2
    assert broker.count(broker.queue("dead", "dead")) == 0


def test_undecryptable_message_is_rejected_and_the_next_processed(broker, start_worker):
    out = data_queue(broker)
    dead = broker.queue("dead", "dead")
    worker = start_worker()
    bad_id = str(uuid.uuid4())
    broker.publish(b"this is not encrypted", {"messageId": bad_id})
    broker.publish(*input_message({"echo": True, "n": 2}))
    _, _, dead_body = broker.get(dead)
    assert dead_body == b"this is not encrypted"
    _, p, b = broker.get(out)
    assert decode(p, b)["body"]["data"]["n"] == 2
    rejected = [r for r in worker.log_records() if "cannot be decoded" in r["message"]]
    assert rejected and rejected[0]["messageId"] == bad_id and rejected[0]["level"] == "error"
    assert worker.proc.poll() is None


def run_to_exit(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m elasticio_sailor run` in the foreground, for the modes that exit by themselves."""
    return subprocess.run(
        [sys.executable, "-m", "elasticio_sailor", "run"],
        cwd=FIXTURE,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    "missing", ["ELASTICIO_FLOW_ID", "ELASTICIO_AMQP_URI", "ELASTICIO_MESSAGE_CRYPTO_IV"]
)
def test_missing_variable_is_named_and_exits_nonzero(broker, platform, missing):
    env = worker_env(broker, platform)
    del env[missing]
    done = run_to_exit(env)
    assert done.returncode != 0
    assert f"{missing} is missing" in done.stderr + done.stdout


def test_startup_failure_is_reported_and_exits_1(broker, platform, start_worker):
    errors = broker.queue("error", "error")
    platform.step_status = 404
    worker = start_worker(wait=False)
    assert worker.wait(30) == 1
    _, props, raw = broker.get(errors)
    error = CIPHER.decrypt(json.loads(raw)["error"].encode(), 1)
    assert "404" in error["message"] and "errorInput" not in json.loads(raw)
    assert props.headers["stepId"] == "step_1" and props.headers["execId"] == "exec-1"
    assert API_KEY not in raw.decode() and PASSWORD not in worker.logs()


def test_startup_and_init_hooks_and_passthrough(broker, platform, start_worker):
    out = data_queue(broker)
    platform.step_data["is_passthrough"] = True
    platform.hooks_data = {"left": "over"}  # a 409 on create: delete, then create again
    start_worker(ELASTICIO_STARTUP_REQUIRED="1")
    assert platform.hooks_data == {"startedBy": "script", "cfgKeys": ["_account", "apiToken", "region"]}
    hooks = [
        r["method"] for r in platform.requests if r["path"].startswith("/sailor-support/hooks/task/flow-1/")
    ]
    assert hooks == ["POST", "DELETE", "POST"]
    body, headers = input_message({"echo": True}, passthrough={"step_0": {"body": {"p": 0}}})
    broker.publish(body, headers)
    _, p, b = broker.get(out)
    message = decode(p, b)
    assert message["body"]["init_calls"] == 1
    assert set(message["passthrough"]) == {"step_0", "step_1"}
    assert message["passthrough"]["step_1"]["body"] == message["body"]


def test_update_keys_failure_becomes_an_error(broker, platform, start_worker):
    errors = broker.queue("error", "error")
    dead = broker.queue("dead", "dead")
    platform.fail_accounts = True
    start_worker()
    body, headers = input_message({"emit": [["updateKeys", {"k": "v"}]]})
    broker.publish(body, headers)
    _, _, raw = broker.get(errors)
    assert "account update refused" in CIPHER.decrypt(json.loads(raw)["error"].encode(), 1)["message"]
    assert broker.get(dead)[2] == body


def test_hook_shutdown_mode_runs_without_a_broker(broker, platform):
    platform.hooks_data = {"state": 1}
    env = worker_env(broker, platform, ELASTICIO_HOOK_SHUTDOWN="1")
    for name in ("ELASTICIO_AMQP_URI", "ELASTICIO_MESSAGE_CRYPTO_PASSWORD"):
        env.pop(name)
    done = run_to_exit(env)
    assert done.returncode == 0, done.stderr
    assert platform.hooks_data is None
    assert [r["method"] for r in platform.requests] == ["GET", "GET", "DELETE"]


def test_nacked_publishes_are_retried_then_become_an_error(broker, start_worker):
    """A queue that refuses publishes (reject-publish overflow) makes the broker nack the data."""
    broker.queue("full", "data", arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    errors = broker.queue("error", "error")
    dead = broker.queue("dead", "dead")
    worker = start_worker(ELASTICIO_AMQP_PUBLISH_RETRY_ATTEMPTS=3, ELASTICIO_AMQP_PUBLISH_RETRY_DELAY=10)
    body, headers = input_message({"emit": [["data", {"data": {"x": 1}}]]})
    broker.publish(body, headers)
    _, _, raw = broker.get(errors)
    assert (
        "broker refused the data publish" in CIPHER.decrypt(json.loads(raw)["error"].encode(), 1)["message"]
    )
    assert broker.get(dead)[2] == body
    assert worker.logs().count("retrying in") == 2


def test_oversized_or_unserialisable_data_becomes_an_error(broker, start_worker):
    errors = broker.queue("error", "error")
    out = data_queue(broker)
    start_worker(ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT=400)
    broker.publish(
        *input_message({"emit": [["data", {"data": {"big": "x" * 1000}}], ["data", {"data": {"ok": 1}}]]})
    )
    _, _, raw = broker.get(errors)
    message = CIPHER.decrypt(json.loads(raw)["error"].encode(), 1)["message"]
    assert message.startswith("Outgoing message size ") and message.endswith("exceeds limit of 400.")
    assert decode(*broker.get(out)[1:])["body"] == {"ok": 1}, "later emits still go out"
    broker.publish(*input_message({"unserialisable": True}))
    _, _, raw = broker.get(errors)
    assert "not JSON serializable" in CIPHER.decrypt(json.loads(raw)["error"].encode(), 1)["message"]


def test_unreachable_broker_fails_start_up_after_the_node_sailors_attempts(broker, platform):
    env = worker_env(broker, platform, ELASTICIO_AMQP_URI="amqp://guest:s3cret-amqp@127.0.0.1:1/%2F")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "elasticio_sailor", "run"],
        cwd=FIXTURE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot connect to AMQP" in done.stderr
    assert done.stderr.count("reconnecting in") == 3, "AMQP_RECONNECT_ATTEMPTS (3) retries, then give up"
    assert time.monotonic() - started < 30
    assert "s3cret-amqp" not in done.stderr


@pytest.fixture
def proxy(broker):
    from urllib.parse import urlsplit

    parts = urlsplit(broker.url)
    p = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    try:
        yield p
    finally:
        p.close()


def test_broker_outage_is_bridged_with_backoff_and_sigterm_waits_for_it(broker, proxy, start_worker):
    """The broker is unreachable for 3 s with messages in flight; a SIGTERM arrives during the outage."""
    out = data_queue(broker)
    worker = start_worker(
        ELASTICIO_RABBITMQ_PREFETCH_SAILOR=2, ELASTICIO_AMQP_URI=proxied_url(broker.url, proxy.port)
    )
    # message 0 is quick, the others take 1 s each (about 4 s in all at prefetch 2): messages are still in
    # flight at the cut even when reading output 0 is slow on a loaded machine (with 0.4 s each, all 8
    # could be done by then: nothing in flight, and the SIGTERM rightly ended the worker at once)
    for i in range(8):
        sleep = 0 if i == 0 else 1.0
        broker.publish(*input_message({"sleep": sleep, "emit": [["data", {"data": {"i": i}}]]}))
    outputs = [decode(*broker.get(out, 10)[1:])["body"]["i"]]
    proxy.cut()
    time.sleep(1.5)
    worker.proc.send_signal(signal.SIGTERM)  # stop while disconnected: in-flight work must still finish
    time.sleep(1.5)
    assert worker.proc.poll() is None, "it waits for the broker to finish the messages in flight"
    proxy.restore()
    assert worker.wait(30) == 0
    while broker.count(out):
        outputs.append(decode(*broker.get(out, 5)[1:])["body"]["i"])
    # Nothing is lost: each message was either processed or is still queued for the next consumer
    # (one whose ack died with the connection is both: at least once).
    queued = [
        CIPHER.decrypt(raw, 1)["body"]["emit"][0][1]["data"]["i"]
        for _, _, raw in broker.get_all(broker.topo.input, broker.count(broker.topo.input))
    ]
    assert set(outputs) | set(queued) == set(range(8)), (outputs, queued)
    assert len(outputs) >= 3, "the messages in flight at the SIGTERM were finished"
    logs = worker.logs()
    delays = [
        float(r["message"].split("reconnecting in ")[1].split("s")[0])
        for r in worker.log_records()
        if "reconnecting in" in r["message"]
    ]
    assert len(delays) >= 3 and delays == sorted(delays), "exponential backoff while the broker is away"
    assert "re-established" in logs
    assert proxy.accepted >= 2


@pytest.mark.requires(
    hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2, reason="needs 2 CPUs (Linux)"
)
def test_worker_pins_itself_to_one_cpu_only_when_asked(broker, platform, start_worker):
    allowed = os.sched_getaffinity(0)
    pinned = start_worker(ELASTICIO_SAILOR_CPU_AFFINITY="auto")
    cpus = os.sched_getaffinity(pinned.proc.pid)
    assert len(cpus) == 1 and cpus <= allowed
    assert "pinned to CPU" in pinned.logs()
    free = start_worker()
    assert os.sched_getaffinity(free.proc.pid) == allowed
    assert "pinned to CPU" not in free.logs()
    out = data_queue(broker)  # both still serve the queue
    for i in range(4):
        broker.publish(*input_message({"echo": True, "i": i}))
    seen = [decode(*broker.get(out)[1:])["body"]["data"]["i"] for _ in range(4)]
    assert sorted(seen) == [0, 1, 2, 3]
