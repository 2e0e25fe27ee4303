"""Interop with the real elastic.io Node sailor 2.7.8 on the real broker, protocol versions 1 and 2.

Chain: test -> Node step A -> our worker -> Node step B -> test. Every hop is decrypted by a
different implementation, and each step appends its name to body.path. The error payload is
checked both ways too: each side reads the other's error events with INPUT_FORMAT=error.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticio_sailor.testing.amqp import Broker
from elasticio_sailor.testing.elasticio import FakePlatform, decode, input_message, worker_env
from elasticio_sailor.testing.node import NODE_COMPONENT, PYTHON_COMPONENT
from elasticio_sailor.testing.process import WorkerProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    steps = {
        "step_a": {"config": {"name": "node-a"}, "snapshot": {}},
        "step_py": {"config": {}, "snapshot": {}},
        "step_b": {"config": {"name": "node-b"}, "snapshot": {}},
    }
    with FakePlatform(steps=steps) as p:
        yield p


@pytest.fixture
def processes() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for proc in started:
        proc.kill()


def start(
    processes: list[WorkerProcess],
    broker: Broker,
    platform: FakePlatform,
    *,
    node: Path | None,
    step: str,
    function: str,
    listen: str,
    data_key: str,
    version: int,
    **env: Any,
) -> WorkerProcess:
    environment = worker_env(
        broker,
        platform,
        function,
        ELASTICIO_STEP_ID=step,
        ELASTICIO_LISTEN_MESSAGES_ON=listen,
        ELASTICIO_DATA_ROUTING_KEY=data_key,
        ELASTICIO_PROTOCOL_VERSION=version,
        ELASTICIO_CONTAINER_ID=f"{step}-{broker.topo.prefix}",
        LOG_LEVEL="info",
        **env,
    )
    if node is None:
        proc = WorkerProcess(environment, cwd=PYTHON_COMPONENT)
    else:
        proc = WorkerProcess(environment, cwd=NODE_COMPONENT, cmd=[shutil.which("node") or "node", str(node)])
    processes.append(proc)
    return proc.wait_ready(30)


@pytest.mark.parametrize("version", [1, 2])
def test_node_to_python_to_node(broker, platform, processes, node_sailor, version):
    q_py = broker.queue("py", "to-py")
    q_b = broker.queue("b", "to-b")
    q_final = broker.queue("final", "final")
    seen_py_in = broker.queue("seen-py-in", "to-py")
    seen_py_out = broker.queue("seen-py-out", "to-b")
    errors = broker.queue("errors", "error")
    start(
        processes,
        broker,
        platform,
        node=node_sailor,
        step="step_a",
        function="relay",
        listen=broker.topo.input,
        data_key="to-py",
        version=version,
    )
    py = start(
        processes,
        broker,
        platform,
        node=None,
        step="step_py",
        function="relay",
        listen=q_py,
        data_key="to-b",
        version=version,
    )
    start(
        processes,
        broker,
        platform,
        node=node_sailor,
        step="step_b",
        function="relay",
        listen=q_b,
        data_key="final",
        version=version,
    )

    body, headers = input_message({"hello": "wörld", "n": 1}, version, metadata={"trace": "m-1"})
    broker.publish(body, headers)

    _, final_props, final_raw = broker.get(q_final, 30)
    final = decode(final_props, final_raw)
    assert final["body"]["path"] == ["node-a", "python", "node-b"]
    assert final["body"]["hello"] == "wörld"
    assert final_props.headers["protocolVersion"] == version
    assert final_props.headers["stepId"] == "step_b"

    # What Node A published and our worker read, and what our worker published and Node B read.
    _, a_props, a_raw = broker.get(seen_py_in)
    _, p_props, p_raw = broker.get(seen_py_out)
    assert a_props.headers["protocolVersion"] == version and p_props.headers["protocolVersion"] == version
    if version == 2:
        assert not p_raw.startswith(b"ey") and len(p_raw) % 16 == 0, "v2 carries raw AES bytes"
    node_a_out = decode(a_props, a_raw)
    py_out = decode(p_props, p_raw)
    assert py_out["body"]["python_saw"]["metadata"] == node_a_out["metadata"] == {"trace": "m-1"}
    assert py_out["body"]["python_saw"]["headers"] == node_a_out["headers"]
    assert p_props.headers["parentMessageId"] == a_props.headers["messageId"]
    assert p_props.headers["threadId"] == a_props.headers["threadId"] == headers["threadId"]
    assert final_props.headers["parentMessageId"] == p_props.headers["messageId"]
    assert final["body"]["node-b_saw"]["metadata"] == {"trace": "m-1"}

    assert broker.count(errors) == 0
    for queue in (broker.topo.input, q_py, q_b):
        assert broker.count(queue) == 0, f"{queue} fully acked"
    assert py.terminate() == 0


@pytest.mark.parametrize("version", [1, 2])
def test_error_payloads_are_read_by_the_other_sailor(broker, platform, processes, node_sailor, version):
    """Our error event read by a Node error consumer, and a Node error event read by ours."""
    q_py = broker.queue("py", "to-py")
    q_node_errors = broker.queue("node-errors", "py-error")
    q_py_errors = broker.queue("py-errors", "node-error")
    q_final = broker.queue("final", "final")
    dead = broker.queue("dead", "dead")
    # Our worker fails on purpose; its errors (key py-error) go to a Node step with INPUT_FORMAT=error.
    start(
        processes,
        broker,
        platform,
        node=None,
        step="step_py",
        function="script",
        listen=q_py,
        data_key="unused",
        version=version,
        ELASTICIO_ERROR_ROUTING_KEY="py-error",
    )
    start(
        processes,
        broker,
        platform,
        node=node_sailor,
        step="step_b",
        function="relay",
        listen=q_node_errors,
        data_key="final",
        version=version,
        ELASTICIO_INPUT_FORMAT="error",
    )
    # A failing Node step; its errors go (routing key node-error) to our worker with INPUT_FORMAT=error.
    start(
        processes,
        broker,
        platform,
        node=node_sailor,
        step="step_a",
        function="fail",
        listen=broker.topo.input,
        data_key="unused",
        version=version,
        ELASTICIO_ERROR_ROUTING_KEY="node-error",
    )
    start(
        processes,
        broker,
        platform,
        node=None,
        step="step_py2",
        function="relay",
        listen=q_py_errors,
        data_key="final",
        version=version,
        ELASTICIO_INPUT_FORMAT="error",
    )

    tag = str(uuid.uuid4())
    body, headers = input_message({"raise": f"python failed {tag}"}, version)
    broker.publish(body, headers, routing_key="to-py")
    body2, headers2 = input_message({"node": tag}, version)
    broker.publish(body2, headers2)

    results = {}
    for _, props, raw in broker.get_all(q_final, 2, 40):
        message = decode(props, raw)
        results[props.headers["stepId"]] = message["body"]
    # Node read our error: {error: {name, message, stack}, errorInput: the decrypted input message}.
    from_python = results["step_b"]
    assert from_python["error"]["name"] == "RuntimeError"
    assert from_python["error"]["message"] == f"python failed {tag}"
    assert from_python["errorInput"]["body"] == {"raise": f"python failed {tag}"}
    assert from_python["path"] == ["node-b"]
    # We read Node's error the same way.
    from_node = results["step_py2"]
    assert from_node["error"]["name"] == "Error"
    assert (
        from_node["error"]["message"]
        == f"node step failed: {json.dumps({'node': tag}, separators=(',', ':'))}"
    )
    assert from_node["errorInput"]["body"] == {"node": tag}
    assert from_node["path"] == ["python"]
    # Node step A emitted an error, so it dead-lettered its input.
    assert broker.get(dead)[2] == body2
