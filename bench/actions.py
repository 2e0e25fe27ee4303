"""Calls per second of actions through `elasticio_sailor.execute` vs a raw `requests.Session` loop.

Why: the connector should add little to what an HTTP call with `requests` costs anyway (target: the raw
rate at most 1.10 times ours). Both sides send the same requests (method, URL, headers) over a kept-alive
loopback connection to a minimal canned-response HTTP/1.1 server running in *another process*, so the
server neither shares our GIL nor dominates the time; the raw side also decodes the JSON, as any client must.

    python -m bench.actions [--iterations 2000] [--runs 5] [--actions ShowContact,ListContacts] [--profile]

Each action: warm-up, then `runs` alternating rounds of `iterations` calls of each side; the median rate
of each side is reported with ratio = raw_rate / our_rate. `--profile` runs our side under cProfile and
prints where the time goes beyond `requests` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from bench import at_least_one

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"  # noqa: S105 - a fake server's token
CONTACT_ID = "6657a9926abd01639cc9e9a5"


def _contact(i: int) -> dict:
    """A contact shaped like Intercom's (about 1.5 kB of JSON)."""
    lst = {"type": "list", "data": [], "total_count": 0, "has_more": False}
    return {
        "type": "contact",
        "id": f"6657a9926abd01639c{i:06x}",
        "workspace_id": "ecahpwf5",
        "external_id": f"ext-{i}",
        "role": "user",
        "email": f"user{i}@example.com",
        "phone": None,
        "name": f"User {i}",
        "avatar": None,
        "owner_id": None,
        "social_profiles": {"type": "list", "data": []},
        "has_hard_bounced": False,
        "marked_email_as_spam": False,
        "unsubscribed_from_emails": False,
        "created_at": 1717021074,
        "updated_at": 1717021074,
        "signed_up_at": None,
        "last_seen_at": None,
        "last_replied_at": None,
        "last_contacted_at": None,
        "last_email_opened_at": None,
        "last_email_clicked_at": None,
        "language_override": None,
        "browser": None,
        "browser_version": None,
        "browser_language": None,
        "os": None,
        "location": {"type": "location", "country": "Ireland", "region": "Dublin", "city": "Dublin"},
        "custom_attributes": {"plan": "pro"},
        "tags": lst,
        "notes": lst,
        "companies": lst,
        "utm_campaign": None,
        "utm_source": None,
        "referrer": None,
    }


# action: (method, path, message data, canned response body)
CASES: dict[str, tuple[str, str, dict, bytes]] = {
    "ShowContact": ("GET", f"/contacts/{CONTACT_ID}", {"id": CONTACT_ID}, json.dumps(_contact(1)).encode()),
    "ListContacts": (
        "GET",
        "/contacts",
        {},
        json.dumps(
            {
                "type": "list",
                "data": [_contact(i) for i in range(50)],
                "total_count": 50,
                "pages": {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1},
            }
        ).encode(),
    ),
}


# ---- the server: canned answers, HTTP/1.1 keep-alive, its own process --------------------------------
async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    bodies = {path: body for _, path, _, body in CASES.values()}
    not_found = b'{"type":"error.list","errors":[{"code":"not_found","message":"Resource Not Found"}]}'
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            path = head.split(b" ", 2)[1].decode().split("?", 1)[0]
            body = bodies.get(path)
            status = b"200 OK" if body is not None else b"404 Not Found"
            body = body if body is not None else not_found
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                b"X-Request-Id: bench\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def serve() -> None:
    """Run the canned server (`python -m bench.actions --serve`); prints its port, then serves."""

    async def main() -> None:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_server() -> tuple[subprocess.Popen, str]:
    """The canned server in a child process (its own interpreter, so its own GIL and core)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.actions", "--serve"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, f"http://127.0.0.1:{int(process.stdout.readline())}"


# ---- the two sides -----------------------------------------------------------------------------------
def our_call(action: str, url: str, extra_cfg: dict | None = None) -> Callable[[], None]:
    from elasticio_sailor import execute

    data = CASES[action][2]
    cfg = {"accessToken": TOKEN, "server": "custom", "otherServer": url, **(extra_cfg or {})}

    def call() -> None:
        events = execute(action, {"data": data}, cfg, component_dir=ROOT)
        if not events or events[0]["event"] != "data":
            raise RuntimeError(f"{action} emitted {events[:1]}")

    return call


def raw_call(action: str, url: str, lean: bool = False) -> Callable[[], None]:
    """The same request with a bare requests.Session: the headers our client sends, JSON decoded.

    `lean`: with trust_env off, as our client configures its session (proxy/CA environment read once,
    not on every call): the strict baseline, showing only what our own code adds.
    """
    method, path, _, _ = CASES[action]
    session = requests.Session()
    session.trust_env = not lean
    session.headers.update(
        {
            "Authorization": f"Bearer {TOKEN}",
            "Accept": "application/json",
            "Intercom-Version": "2.8",
            "User-Agent": "bench",
        }
    )
    full_url = url + path

    def call() -> None:
        response = session.request(method, full_url, timeout=(10, 60))
        if response.status_code != 200:
            raise RuntimeError(f"raw {action}: {response.status_code}")
        response.json()

    return call


def rate(call: Callable[[], None], iterations: int) -> float:
    return timed(call, iterations)[0]


def timed(call: Callable[[], None], iterations: int) -> tuple[float, float]:
    """(calls per wall-clock second, CPU microseconds of this process per call)."""
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(iterations):
        call()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return iterations / wall, cpu / iterations * 1e6


SIDES = {
    "ours": "ours: elasticio_sailor.execute",
    "raw": "raw requests.Session loop",
    "raw_lean": "raw, trust_env off (as our client)",
}


def measure(action: str, url: str, iterations: int, runs: int) -> dict:
    calls = {
        "ours": our_call(action, url),
        "raw": raw_call(action, url),
        "raw_lean": raw_call(action, url, lean=True),
    }
    for call in calls.values():  # warm-up: imports, compiled validators, connections, caches
        timed(call, max(50, iterations // 10))
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for _ in range(runs):  # interleaved, so drift (CPU frequency, other load) hits every side alike
        for name, call in calls.items():
            samples[name].append(timed(call, iterations))
    per_s = {name: statistics.median(r for r, _ in values) for name, values in samples.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in samples.items()}
    return {
        "action": action,
        "iterations": iterations,
        "runs": runs,
        "per_s": {name: round(value) for name, value in per_s.items()},
        "cpu_us_per_call": {name: round(value) for name, value in cpu.items()},
        "ratio": round(per_s["raw"] / per_s["ours"], 3),
        "ratio_lean": round(per_s["raw_lean"] / per_s["ours"], 3),
        "runs_per_s": {name: [round(r) for r, _ in values] for name, values in samples.items()},
    }


def report(result: dict) -> str:
    lines = [
        f"{result['action']} (median of {result['runs']} runs x {result['iterations']} calls)",
        f"  {'side':38} {'calls/s':>8} {'CPU us/call':>12}",
    ]
    for name, title in SIDES.items():
        lines.append(f"  {title:38} {result['per_s'][name]:8d} {result['cpu_us_per_call'][name]:12d}")
    lines.append(
        f"  ratio raw/ours = {result['ratio']:.3f} (target <= 1.10); "
        f"vs trust_env off = {result['ratio_lean']:.3f}"
    )
    return "\n".join(lines)


def profile(action: str, url: str, iterations: int, top: int = 30) -> str:
    """cProfile of our side: our own code (sailor, lib) by cumulative time, then everything by own time."""
    call = our_call(action, url)
    timed(call, 100)
    profiler = cProfile.Profile()
    profiler.enable()
    timed(call, iterations)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"elasticio_sailor|/lib/", top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=at_least_one, default=2000)
    parser.add_argument("--runs", type=at_least_one, default=5)
    parser.add_argument("--actions", default=",".join(CASES))
    parser.add_argument("--profile", action="store_true", help="profile our side (cProfile, by own time)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per action")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    sys.path.insert(0, str(ROOT))
    process, url = start_server()
    try:
        for action in args.actions.split(","):
            result = measure(action, url, args.iterations, args.runs)
            print(json.dumps(result) if args.json else report(result), flush=True)
            if args.profile:
                print(profile(action, url, args.iterations))
    finally:
        process.terminate()
        process.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
