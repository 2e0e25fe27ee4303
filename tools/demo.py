"""The README's first command: run real actions end to end against the built-in fake Intercom.

Why: a newcomer should see the connector work in one command, offline and without an Intercom account.
It starts the fake Intercom (tools/fake_intercom.py) on loopback, writes a cfg naming it as the custom
server, and runs the actions of STEPS (a paginated list, a create, a lookup that fails) through the local
harness exactly as a user would (`python -m elasticio_sailor exec ACTION --cfg CFG --msg MSG`), printing
every emitted event. Its files live in a temporary directory, never in the repository.

    .venv/bin/python -m tools.demo            # from the repository root
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.fake_intercom import FakeIntercom

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    (
        "ListContacts",
        {"emitBehaviour": "emitIndividually"},
        {"data": {}},
        "List all contacts, one data event per contact (emitIndividually), following the cursor pagination "
        "(the fake serves 2 per page).",
    ),
    (
        "CreateContact",
        {},
        {"data": {"requestBody": {"email": "grace@example.com", "name": "Grace Hopper"}}},
        "Create a contact: the message's requestBody is validated against the action's in-schema, "
        "then POSTed.",
    ),
    (
        "ShowContact",
        {},
        {"data": {"id": "no-such-contact"}},
        "Errors are events too: the 404 becomes an error event (status, code, request id), exit code 1.",
    ),
]
EXPECTED_EXIT = {"ShowContact": 1}


def run_step(fake: FakeIntercom, workdir: Path, action: str, fields: dict, msg: dict) -> bool:
    """Run one action through the harness, print its events and requests; False if it did not go as meant."""
    cfg = {"accessToken": fake.token, "server": "custom", "otherServer": fake.url, **fields}
    cfg_file, msg_file = workdir / f"{action}.cfg.json", workdir / f"{action}.msg.json"
    cfg_file.write_text(json.dumps(cfg))
    msg_file.write_text(json.dumps(msg))
    command = [
        sys.executable,
        "-m",
        "elasticio_sailor",
        "exec",
        action,
        "--cfg",
        str(cfg_file),
        "--msg",
        str(msg_file),
        "--component",
        str(ROOT),
    ]
    print(f"$ python -m elasticio_sailor exec {action} --cfg {cfg_file.name} --msg {msg_file.name}")
    print(f"  cfg: {json.dumps({**cfg, 'accessToken': '***'})}")
    print(f"  msg: {json.dumps(msg)}")
    fake.clear_requests()
    result = subprocess.run(  # noqa: S603
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in result.stdout.splitlines():
        print("  " + _summary(line))
    if result.returncode != EXPECTED_EXIT.get(action, 0):
        print(result.stderr, file=sys.stderr)
    sent = ", ".join(
        f"{r.method} {r.path}" + (f"?{'&'.join(f'{k}={v}' for k, v in r.query.items())}" if r.query else "")
        for r in fake.requests
    )
    print(f"  requests the fake Intercom received: {sent}\n  exit code: {result.returncode}\n")
    return result.returncode != EXPECTED_EXIT.get(action, 0)


def _summary(line: str) -> str:
    """An event line, with each contact shortened to the fields worth reading (the rest is Intercom's)."""
    try:
        event = json.loads(line)
    except ValueError:
        return line
    data = event.get("data")
    if isinstance(data, dict) and data.get("type") == "contact":
        keep = ("type", "id", "email", "name", "role", "created_at", "updated_at")
        event["data"] = {**{k: data.get(k) for k in keep}, "...": f"{len(data) - len(keep)} more fields"}
    return json.dumps(event)


def main() -> int:
    print(
        "Intercom connector demo: real actions, run by the sailor's local harness, against a fake\n"
        "Intercom API on 127.0.0.1 (no account needed). Each line under a command is one emitted event\n"
        "(contacts shortened to a few fields here; the harness prints them whole).\n"
    )
    with FakeIntercom() as fake, tempfile.TemporaryDirectory(prefix="intercom-demo-") as tmp:
        fake.per_page = 2
        print(f"Fake Intercom listening on {fake.url}\n")
        failed = []
        for action, fields, msg, explanation in STEPS:
            print(f"# {explanation}")
            failed.append(run_step(fake, Path(tmp), action, fields, msg))
    return 1 if any(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
