"""Our worker next to the system it replaces: the original Node component under its ferryman (OIH), and the
elastic.io Node sailor (elastic.io dialect). One run, interleaved rounds, medians and ratios.

    .venv/bin/python -m bench.peer                      # the issue 10 table (about 6-8 minutes on 2 cores)
    .venv/bin/python -m bench.peer --rounds 1 --latency-messages 20 --cpu-messages 30   # a smoke run

OIH dialect (`ours`: ``python -m elasticio_sailor run`` with this repository's component; `original`:
openintegrationhub/intercom-component from ../shared/peers, ``npm ci --omit=dev`` into a temporary folder,
run by its ferryman 2.2.0 ``runGlobal.js``). Both consume the same kind of queue on the same broker, get the
same orchestrator-style messages (an `orchestratorToken` naming ``ShowContact``, a secret id and fields
pointing at the fake Intercom), fetch the same OAuth secret from the same fake secret service, and call the
same fake Intercom (``tools/fake_intercom.py``). The fakes run in a child process of their own, so they
neither share our GIL nor count as either side's CPU; they speak HTTP/1.1 keep-alive, as the real services
do. Prefetch 10, output throttles lifted for both (``ELASTICIO_OUTPUT_RATE_LIMIT`` etc.).

elastic.io dialect (`ours` vs the Node sailor 2.7.8 of sailor/tests/interop/node): the ``echo`` action of
bench/worker.py (no HTTP), encrypted protocol v1 messages, prefetch 10, data throttle lifted.

Scenarios, each side started fresh on a pre-filled queue, sides interleaved within every round:

- ``latency``: the fake answers after --latency-ms (50): messages/s from the first output to the last,
  against the ideal prefetch/latency;
- ``cpu``: no latency, --cpu-messages (2000): CPU (user+system, all threads, /proc/PID/stat) and context
  switches (voluntary+involuntary, summed over /proc/PID/task/*/status) per message between the first output
  and the last, peak RSS (VmHWM at the end), start-up to first output (spawn to first output message);
- ``cpu+env``: the same with --extra-env (150) more environment variables, shaped like the service links
  Kubernetes puts into every pod.

Every child gets the same small base environment (PATH, HOME, LANG, and REQUESTS_CA_BUNDLE/SSL_CERT_FILE
when set), not the caller's. The machine is shared: read the ratios and the medians, not single runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import at_least_one

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# the original component beside the repository (../shared), or where INTERCOM_PEER_DIR says
PEER_DIR = Path(
    os.environ.get("INTERCOM_PEER_DIR") or REPO.parent / "shared" / "peers" / "intercom-component-original"
)
INTERCOM_TOKEN = "bench-intercom-token-0123456789"  # noqa: S105 - the fake's token, not a secret
SECRET_ID = "bench-secret-1"  # noqa: S105 - an id
CLK_TCK = os.sysconf("SC_CLK_TCK")
BASE_ENV_NAMES = ("PATH", "HOME", "LANG", "LC_ALL", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "TMPDIR")


# --- the fakes, in a child process ------------------------------------------------------------------
def _serve_fake(conn: Any, which: str) -> None:
    """Child process: the fake Intercom or the fake OIH services; obeys ("delay", s) and ("stop",)."""
    sys.path.insert(0, str(REPO))
    if which == "intercom":
        from tools.fake_intercom import FakeIntercom

        fake = FakeIntercom(token=INTERCOM_TOKEN, seed=False).start()
        contact = fake.add_contact(email="bench@example.com", name="Bench Contact", role="user")
        conn.send({"url": fake.url, "contact": contact["id"]})
    else:
        from elasticio_sailor.testing import fake_oih

        # keep-alive, as the real services (every reply of the fake has a Content-Length); without Nagle,
        # or each reply's body waits ~40 ms for the client's delayed ACK (see tools/fake_intercom.py)
        fake_oih._Handler.protocol_version = "HTTP/1.1"
        fake_oih._Handler.disable_nagle_algorithm = True
        services = fake_oih.FakeOih().__enter__()
        services.add_oauth_secret(SECRET_ID, INTERCOM_TOKEN)
        conn.send({"url": services.url})
    while True:
        command = conn.recv()
        if command[0] == "delay":
            if which == "intercom":
                fake.delay = float(command[1])
                fake.clear_requests()  # what was recorded would only grow
            else:
                with services._server.lock:
                    services.state.requests.clear()
            conn.send("ok")
        else:
            if which == "intercom":
                fake.stop()
            else:
                services.__exit__()
            conn.send("stopped")
            return


class Fakes:
    """The fake Intercom and the fake OIH services, each in a process of its own (neither shares our GIL,
    nor each other's: with both in one process it, not the runtimes, was the limit at ~75 msg/s)."""

    def __enter__(self) -> Fakes:
        ctx = multiprocessing.get_context("spawn")
        self._children = []
        info = {}
        for which in ("intercom", "oih"):
            conn, child = ctx.Pipe()
            proc = ctx.Process(target=_serve_fake, args=(child, which), daemon=True)
            proc.start()
            self._children.append((conn, proc))
            if not conn.poll(60):
                raise RuntimeError(f"the fake {which} did not start")
            info[which] = conn.recv()
        self.intercom_url, self.contact_id = info["intercom"]["url"], info["intercom"]["contact"]
        self.oih_url = info["oih"]["url"]
        return self

    def delay(self, seconds: float) -> None:
        for conn, _ in self._children:
            conn.send(("delay", seconds))
            conn.recv()

    def __exit__(self, *exc: object) -> None:
        for conn, proc in self._children:
            try:
                conn.send(("stop",))
                conn.poll(10)
            finally:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()


def _bare_client(conn: Any, url: str, messages: int, threads: int) -> None:
    """Child process: `threads` threads share `messages` GETs of one contact, each its own kept-alive
    requests session (environment read once, as our client); sends back (first answer, last answer)."""
    import threading

    import requests

    left, lock, stamps = [messages], threading.Lock(), []
    headers = {
        "Authorization": f"Bearer {INTERCOM_TOKEN}",
        "Intercom-Version": "2.8",
        "Accept": "application/json",
    }

    def loop() -> None:
        session = requests.Session()
        session.trust_env = False
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            session.get(url, headers=headers, timeout=30).json()
            stamps.append(time.monotonic())

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    conn.send((min(stamps), max(stamps), len(stamps)))


def run_bare(fakes: Fakes, messages: int, prefetch: int, timeout: float) -> Result:
    """The ceiling of the latency scenario: no AMQP, no runtime, only `prefetch` Python threads calling the
    same fake Intercom with requests (what any Python runtime's HTTP calls cost on this machine)."""
    ctx = multiprocessing.get_context("spawn")
    conn, child = ctx.Pipe()
    url = f"{fakes.intercom_url}/contacts/{fakes.contact_id}"
    proc = ctx.Process(target=_bare_client, args=(child, url, messages, prefetch), daemon=True)
    proc.start()
    try:
        if not conn.poll(timeout):
            raise RuntimeError(f"the bare client did not finish {messages} calls in {timeout:.0f}s")
        first, last, count = conn.recv()
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    nan = float("nan")
    return Result(
        msg_per_s=(count - 1) / max(last - first, 1e-6), cpu_ms=nan, ctx=nan, rss_mb=nan, startup_s=nan
    )


# --- measuring a process ----------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """user + system time of the whole process (every thread, finished ones too)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches summed over the process's live threads."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def threads_switches(pid: int) -> dict[str, int]:
    """Context switches per thread, keyed "name:n" in thread-id order (Python 3.11 threads are all named
    like the process, so the order tells them apart: main, then the I/O thread, then the pool)."""
    out: dict[str, int] = {}
    for n, task in enumerate(sorted(os.listdir(f"/proc/{pid}/task"), key=int)):
        try:
            with open(f"/proc/{pid}/task/{task}/comm", encoding="utf-8") as fh:
                name = fh.read().strip()
            with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as fh:
                out[f"{name}:{n}"] = sum(
                    int(line.split()[1])
                    for line in fh
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
                )
        except OSError:
            continue
    return out


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Result:
    msg_per_s: float
    cpu_ms: float  # per message
    ctx: float  # context switches per message
    rss_mb: float
    startup_s: float
    threads: dict[str, float] = field(default_factory=dict)  # context switches per message, by thread


def observe(
    proc: subprocess.Popen,
    spawned: float,
    count_outputs: Callable[[], int],
    total: int,
    timeout: float,
    log_path: Path,
) -> Result:
    """Poll the output queue until `total` outputs; sample the process at the first and the last."""
    deadline = time.monotonic() + timeout
    first: tuple[float, int, float, int, dict[str, int]] | None = None
    while True:
        depth = count_outputs()
        now = time.monotonic()
        if depth and first is None:
            first = (
                now,
                depth,
                cpu_seconds(proc.pid),
                context_switches(proc.pid),
                threads_switches(proc.pid),
            )
        if depth >= total:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"the runtime exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        if now > deadline:
            raise RuntimeError(
                f"only {depth} of {total} outputs after {timeout:.0f}s:\n{log_path.read_text()[-3000:]}"
            )
        time.sleep(0.005)
    cpu, ctx, threads, rss = (
        cpu_seconds(proc.pid),
        context_switches(proc.pid),
        threads_switches(proc.pid),
        peak_rss_mb(proc.pid),
    )
    assert first is not None
    done = max(total - first[1], 1)
    return Result(
        msg_per_s=done / max(now - first[0], 1e-6),
        cpu_ms=(cpu - first[2]) * 1000 / done,
        ctx=(ctx - first[3]) / done,
        rss_mb=rss,
        startup_s=first[0] - spawned,
        threads={k: (v - first[4].get(k, 0)) / done for k, v in threads.items()},
    )


def base_env(extra: int) -> dict[str, str]:
    """The same small environment for every child, plus `extra` Kubernetes-like service variables."""
    env = {k: os.environ[k] for k in BASE_ENV_NAMES if os.environ.get(k)}
    env["PYTHONUNBUFFERED"] = "1"
    for i in range(extra // 6 + 1):
        name, ip, port = f"BENCH_SVC_{i}", f"10.96.{i // 250}.{i % 250 + 1}", 8000 + i
        for key, value in (
            (f"{name}_SERVICE_HOST", ip),
            (f"{name}_SERVICE_PORT", str(port)),
            (f"{name}_PORT", f"tcp://{ip}:{port}"),
            (f"{name}_PORT_{port}_TCP", f"tcp://{ip}:{port}"),
            (f"{name}_PORT_{port}_TCP_PROTO", "tcp"),
            (f"{name}_PORT_{port}_TCP_ADDR", ip),
        ):
            if extra > 0:
                env[key] = value
                extra -= 1
    return env


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_observed(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    count_outputs: Callable[[], int],
    total: int,
    timeout: float,
) -> Result:
    """Spawn a runtime (its output to `log_path`), observe it until `total` outputs, stop it."""
    with open(log_path, "wb") as log:
        spawned = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            return observe(proc, spawned, count_outputs, total, timeout, log_path)
        finally:
            stop(proc)


# --- OIH: ours and the original ----------------------------------------------------------------------
def install_original(workdir: Path) -> Path:
    """`npm ci --omit=dev` of the original component in a temporary copy; the ferryman's runGlobal.js."""
    if not PEER_DIR.is_dir():
        raise SystemExit(
            f"the original component is not at {PEER_DIR} (set INTERCOM_PEER_DIR to where it is); "
            "--only ours runs without it"
        )
    target = workdir / "intercom-component-original"
    shutil.copytree(PEER_DIR, target, ignore=shutil.ignore_patterns("node_modules"))
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    npm = shutil.which("npm")
    assert npm, "npm is needed to run the original component"
    subprocess.run(
        [npm, "ci", "--omit=dev", "--no-audit", "--no-fund"],
        cwd=target,
        check=True,
        capture_output=True,
        timeout=900,
    )
    script = target / "node_modules" / "@openintegrationhub" / "ferryman" / "runGlobal.js"
    assert script.is_file(), f"{script} missing after npm ci"
    return script


def run_oih(
    side: str,
    fakes: Fakes,
    messages: int,
    extra_env: int,
    prefetch: int,
    timeout: float,
    ferryman: Path | None,
    logdir: Path,
) -> Result:
    from elasticio_sailor.testing.amqp import Broker
    from elasticio_sailor.testing.oih import (
        DATA_KEY,
        OihTopology,
        make_token,
        orchestrator_message,
        token_claims,
    )

    topo = OihTopology()
    broker = Broker(topo)
    data_queue = broker.queue("data", DATA_KEY, exchange=topo.backchannel)
    log_path = logdir / f"{side}-{topo.prefix}.log"
    try:
        fields = (
            {"server": "custom", "otherServer": fakes.intercom_url}
            if side == "ours"
            else {"server": "--- Custom URL", "otherServer": fakes.intercom_url}
        )
        token = make_token(
            **token_claims(topo.flow_id, topo.step_id, "ShowContact", fields=fields, secretId=SECRET_ID)
        )
        body = {"data": {"id": fakes.contact_id}, "metadata": {}}
        for i in range(messages):
            broker.publish(
                *orchestrator_message(
                    broker.topo, body, token=token, headers={"messageId": f"m{i}-{uuid.uuid4().hex[:8]}"}
                )
            )
        while broker.count(topo.input) < messages:
            broker.connection.sleep(0.05)
        env = {**base_env(extra_env), **topo.env(services_url=fakes.oih_url)}
        env.update(
            {
                "ELASTICIO_RABBITMQ_PREFETCH_SAILOR": str(prefetch),
                "ELASTICIO_OUTPUT_RATE_LIMIT": "1000000",
                "ELASTICIO_ERROR_RATE_LIMIT": "1000000",
                "ELASTICIO_SNAPSHOT_RATE_LIMIT": "1000000",
                "ELASTICIO_DATAHUB_BASE_URL": "false",
                "LOG_LEVEL": "warn",
            }
        )
        if side == "ours":
            env["ELASTICIO_COMPONENT_PATH"] = str(REPO)
            cmd, cwd = [sys.executable, "-m", "elasticio_sailor", "run"], REPO
        else:
            assert ferryman is not None
            env["ELASTICIO_COMPONENT_PATH"] = ""
            env["NODE_ENV"] = "production"
            cmd, cwd = [shutil.which("node") or "node", str(ferryman)], ferryman.parents[3]
        return run_observed(cmd, cwd, env, log_path, lambda: broker.count(data_queue), messages, timeout)
    finally:
        broker.close()


# --- elastic.io: ours and the Node sailor ---------------------------------------------------------------
def run_elasticio(
    side: str, messages: int, prefetch: int, timeout: float, node_sailor: Path | None, logdir: Path
) -> Result:
    from elasticio_sailor.testing.amqp import Broker
    from elasticio_sailor.testing.elasticio import ElasticioTopology, FakePlatform, worker_env
    from elasticio_sailor.testing.node import NODE_COMPONENT, PYTHON_COMPONENT

    from bench.worker import fill

    broker = Broker(ElasticioTopology())
    log_path = logdir / f"elasticio-{side}-{broker.topo.prefix}.log"
    try:
        out = broker.queue("data", "data")
        with FakePlatform({"config": {}, "snapshot": {}}) as platform:
            fill(broker, messages, 1)
            env = worker_env(broker, platform, "echo")
            env = {**base_env(0), **{k: v for k, v in env.items() if k.startswith("ELASTICIO_")}}
            env.update(
                {
                    "ELASTICIO_RABBITMQ_PREFETCH_SAILOR": str(prefetch),
                    "ELASTICIO_DATA_RATE_LIMIT": "1000000",
                    "LOG_LEVEL": "warn",
                }
            )
            if side == "ours":
                cmd, cwd = [sys.executable, "-m", "elasticio_sailor", "run"], PYTHON_COMPONENT
            else:
                assert node_sailor is not None
                cmd, cwd = [shutil.which("node") or "node", str(node_sailor)], NODE_COMPONENT
            return run_observed(cmd, cwd, env, log_path, lambda: broker.count(out), messages, timeout)
    finally:
        broker.close()


# --- the run ------------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=at_least_one, default=3, help="interleaved rounds; medians reported")
    parser.add_argument("--prefetch", type=at_least_one, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--latency-messages", type=at_least_one, default=600)
    parser.add_argument("--cpu-messages", type=at_least_one, default=2000)
    parser.add_argument("--extra-env", type=int, default=150)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per run")
    parser.add_argument("--no-elasticio", action="store_true", help="skip the elastic.io dialect")
    parser.add_argument("--only", choices=("ours", "original"), help="run one OIH side only")
    parser.add_argument("--json", metavar="PATH", help="also write every run's figures to PATH as JSON")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the runtime, the fakes and the temporary folder are cleaned up
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:

    sides = [args.only] if args.only else ["ours", "original"]
    e_sides = [] if args.no_elasticio else (["ours"] if args.only == "ours" else ["ours", "node"])
    samples: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        workdir = Path(tmp)
        ferryman = install_original(workdir) if "original" in sides else None
        node_sailor = None
        if "node" in e_sides:
            from elasticio_sailor.testing.node import ensure_node_sailor

            node_sailor = ensure_node_sailor()
        logdir = workdir / "logs"
        logdir.mkdir()
        with Fakes() as fakes:
            for _ in range(max(1, args.rounds)):
                plan: list[tuple[str, Callable[[], Result]]] = []
                for side in sides:
                    plan.append(
                        (
                            f"latency/{side}",
                            lambda s=side: (
                                fakes.delay(args.latency_ms / 1000),
                                run_oih(
                                    s,
                                    fakes,
                                    args.latency_messages,
                                    0,
                                    args.prefetch,
                                    args.timeout,
                                    ferryman,
                                    logdir,
                                ),
                            )[1],
                        )
                    )
                if "ours" in sides:
                    plan.append(
                        (
                            "latency/bare",
                            lambda: (
                                fakes.delay(args.latency_ms / 1000),
                                run_bare(fakes, args.latency_messages, args.prefetch, args.timeout),
                            )[1],
                        )
                    )
                for side in sides:
                    plan.append(
                        (
                            f"cpu/{side}",
                            lambda s=side: (
                                fakes.delay(0),
                                run_oih(
                                    s,
                                    fakes,
                                    args.cpu_messages,
                                    0,
                                    args.prefetch,
                                    args.timeout,
                                    ferryman,
                                    logdir,
                                ),
                            )[1],
                        )
                    )
                if args.extra_env:
                    for side in sides:
                        plan.append(
                            (
                                f"cpu+env/{side}",
                                lambda s=side: (
                                    fakes.delay(0),
                                    run_oih(
                                        s,
                                        fakes,
                                        args.cpu_messages,
                                        args.extra_env,
                                        args.prefetch,
                                        args.timeout,
                                        ferryman,
                                        logdir,
                                    ),
                                )[1],
                            )
                        )
                for side in e_sides:
                    plan.append(
                        (
                            f"elasticio/{side}",
                            lambda s=side: run_elasticio(
                                s, args.cpu_messages, args.prefetch, args.timeout, node_sailor, logdir
                            ),
                        )
                    )
                for name, run in plan:
                    samples.setdefault(name, []).append(run())
                    print(f"  {name}: {_short(samples[name][-1])}", file=sys.stderr, flush=True)
    table = summarise(samples, args)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    print(render(table, args))
    return 0


def _short(r: Result) -> str:
    return (
        f"{r.msg_per_s:.0f} msg/s, {r.cpu_ms:.2f} ms CPU/msg, {r.ctx:.1f} cs/msg, {r.rss_mb:.0f} MB, "
        f"start {r.startup_s:.2f} s"
    )


def summarise(samples: dict[str, list[Result]], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rounds": args.rounds,
        "prefetch": args.prefetch,
        "latency_ms": args.latency_ms,
        "ideal_msg_per_s": args.prefetch / (args.latency_ms / 1000),
        "runs": {},
    }
    for name, results in samples.items():
        out["runs"][name] = {
            "msg_per_s": [round(r.msg_per_s, 1) for r in results],
            "cpu_ms": [round(r.cpu_ms, 3) for r in results],
            "ctx": [round(r.ctx, 1) for r in results],
            "rss_mb": [round(r.rss_mb, 1) for r in results],
            "startup_s": [round(r.startup_s, 3) for r in results],
            "threads": {
                k: round(median([r.threads.get(k, 0.0) for r in results]), 1)
                for k in sorted(
                    {k for r in results for k in r.threads},
                    key=lambda k: (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1])),
                )
            },
        }
    return out


def render(table: dict[str, Any], args: argparse.Namespace) -> str:
    runs = table["runs"]

    def med(name: str, key: str) -> float:
        return median(runs[name][key]) if name in runs else float("nan")

    def cell(name: str, key: str, fmt: str) -> str:
        if name not in runs:
            return "-"
        values = runs[name][key]
        spread = f" ({format(min(values), fmt)}-{format(max(values), fmt)})" if len(values) > 1 else ""
        return format(median(values), fmt) + spread

    ideal = table["ideal_msg_per_s"]
    rows = [
        (
            f"{args.latency_ms:g} ms API latency, {args.latency_messages} msgs: msg/s (ideal {ideal:.0f})",
            "latency",
            "msg_per_s",
            ".0f",
        ),
        (f"no latency, {args.cpu_messages} msgs: CPU ms per message", "cpu", "cpu_ms", ".2f"),
        (f"same, with {args.extra_env} extra environment variables: CPU ms/msg", "cpu+env", "cpu_ms", ".2f"),
        ("context switches per message (no latency)", "cpu", "ctx", ".1f"),
        ("peak RSS, MB (no latency)", "cpu", "rss_mb", ".0f"),
        ("start-up to first output, s", "cpu", "startup_s", ".2f"),
    ]
    lines = [
        f"OIH dialect, ShowContact, prefetch {args.prefetch}, medians of {table['rounds']} interleaved "
        "rounds (min-max)",
        "",
        "| | ours | original | ours/original |",
        "|---|---|---|---|",
    ]
    for label, scenario, key, fmt in rows:
        ours, orig = med(f"{scenario}/ours", key), med(f"{scenario}/original", key)
        ratio = f"{ours / orig:.2f}" if orig == orig and orig else "-"
        lines.append(
            f"| {label} | {cell(scenario + '/ours', key, fmt)} | "
            f"{cell(scenario + '/original', key, fmt)} | {ratio} |"
        )
    lat = med("latency/ours", "msg_per_s")
    lines.append(
        f"\nlatency-bound: ours {lat / ideal:.2f} of prefetch/latency "
        f"(original {med('latency/original', 'msg_per_s') / ideal:.2f}; target >= 0.9)"
    )
    if "latency/bare" in runs:
        bare = med("latency/bare", "msg_per_s")
        lines.append(
            f"ceiling: {args.prefetch} bare requests threads, no AMQP, same fake: "
            f"{cell('latency/bare', 'msg_per_s', '.0f')} msg/s = {bare / ideal:.2f} of "
            f"prefetch/latency; ours / bare {lat / bare:.2f}"
        )
    if "elasticio/ours" in runs:
        lines += [
            "",
            f"elastic.io dialect, echo action, {args.cpu_messages} msgs, prefetch {args.prefetch}",
            "",
            "| | ours | Node sailor 2.7.8 | ours/Node |",
            "|---|---|---|---|",
        ]
        for label, key, fmt in (
            ("msg/s", "msg_per_s", ".0f"),
            ("CPU ms per message", "cpu_ms", ".2f"),
            ("context switches per message", "ctx", ".1f"),
            ("peak RSS, MB", "rss_mb", ".0f"),
            ("start-up to first output, s", "startup_s", ".2f"),
        ):
            ours, node = med("elasticio/ours", key), med("elasticio/node", key)
            ratio = f"{ours / node:.2f}" if node == node and node else "-"
            lines.append(
                f"| {label} | {cell('elasticio/ours', key, fmt)} | "
                f"{cell('elasticio/node', key, fmt)} | {ratio} |"
            )
    lines.append(
        "\ncontext switches per message by thread (median): "
        + "; ".join(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in runs[name]["threads"].items() if v >= 0.5)
            for name in runs
            if name.startswith(("cpu/", "elasticio/"))
        )
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
