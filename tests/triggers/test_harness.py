"""The local harness runs each trigger from the catalogue: `python -m elasticio_sailor exec|select-model`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lib.triggers.webhook import signature

from .conftest import BASE, ROOT

pytestmark = pytest.mark.timeout(120)

POLLING = [
    "newOrUpdatedContacts",
    "newOrUpdatedConversations",
    "newOrUpdatedCompanies",
    "newOrUpdatedArticles",
    "newOrUpdatedCollections",
    "newOrUpdatedSections",
    "newOrUpdatedNewsItems",
    "newOrUpdatedNewsfeeds",
    "newOrUpdatedSegments",
    "newOrUpdatedDataAttributes",
    "newOrUpdatedHelpCenters",
    "newOrUpdatedTickets",
]


def sailor(component_dir, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "elasticio_sailor", *args, "--component", str(component_dir)]
    return subprocess.run(command, capture_output=True, text=True, input=stdin, timeout=60, cwd=ROOT)


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_catalogue_declares_every_trigger_module(component_dir):
    listed = lines(sailor(component_dir, "list", "--json").stdout)
    triggers = {e["id"] for e in listed if e["type"] == "trigger"}
    assert triggers == {*POLLING, "webhook"}
    spec = json.loads((component_dir / "component.json").read_text())["triggers"]
    for tid, entry in spec.items():
        for key in ("in", "out"):
            assert (ROOT / entry["metadata"][key]).is_file(), (tid, key)
        assert (ROOT / entry["main"]).is_file()
        assert entry.get("type") == ("polling" if tid != "webhook" else None)


def test_exec_polls_and_prints_the_new_snapshot(fake, cfg, component_dir, tmp_path):
    made = [fake.add_contact(email=f"h{i}@example.com", updated_at=BASE + i)["id"] for i in range(3)]
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({**cfg, "startTime": BASE, "pageSize": 2}))
    snap_file = tmp_path / "snap.json"
    snap_file.write_text("{}")
    done = sailor(
        component_dir,
        "exec",
        "newOrUpdatedContacts",
        "--cfg",
        str(cfg_file),
        "--snapshot",
        str(snap_file),
        "--snapshot-out",
        str(tmp_path / "out.json"),
    )
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)
    assert [e["data"]["id"] for e in events if e["event"] == "data"] == made
    snaps = [e["snapshot"] for e in events if e["event"] == "snapshot"]
    assert snaps[-1]["updated_at"] == BASE + 2 and snaps[-1]["ids_at_last"] == [made[2]]
    assert json.loads((tmp_path / "out.json").read_text()) == snaps[-1]
    assert fake.token not in done.stdout + done.stderr  # the token is never printed
    # the next run, from that snapshot: nothing new
    snap_file.write_text(json.dumps(snaps[-1]))
    again = sailor(
        component_dir, "exec", "newOrUpdatedContacts", "--cfg", str(cfg_file), "--snapshot", str(snap_file)
    )
    assert again.returncode == 0 and [e for e in lines(again.stdout) if e["event"] == "data"] == []


@pytest.mark.parametrize("trigger", POLLING)
def test_exec_each_polling_trigger_first_run(trigger, fake, cfg, component_dir, tmp_path):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))  # no startTime: the first run records "now" and emits nothing
    done = sailor(component_dir, "exec", trigger, "--cfg", str(cfg_file))
    assert done.returncode == 0, done.stdout + done.stderr
    events = lines(done.stdout)
    assert [e["event"] for e in events] == ["snapshot"] and events[0]["snapshot"]["updated_at"] > BASE


def test_exec_webhook_good_and_bad_signature(component_dir, tmp_path):
    note = {
        "type": "notification_event",
        "topic": "company.created",
        "id": "notif_1",
        "app_id": "a",
        "data": {"type": "notification_event_data", "item": {"type": "company", "id": "c1"}},
    }
    body = json.dumps(note, separators=(",", ":")).encode()
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"clientSecret": "s3cr3t-value"}))
    good = {"data": note, "headers": {"X-Hub-Signature": signature(body, "s3cr3t-value")}}
    webhook = ("exec", "webhook", "--cfg", str(cfg_file), "--msg", "-")
    done = sailor(component_dir, *webhook, stdin=json.dumps(good))
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout)[0]["metadata"]["recordUid"] == "c1"
    bad = {"data": note, "headers": {"X-Hub-Signature": signature(body, "wrong")}}
    done = sailor(component_dir, *webhook, stdin=json.dumps(bad))
    assert done.returncode == 1
    error = lines(done.stdout)[0]
    assert error["event"] == "error" and error["error"]["code"] == "signature_invalid"
    assert "s3cr3t-value" not in done.stdout + done.stderr


def test_select_model_through_the_harness(fake, cfg, component_dir, tmp_path):
    fake.add_admin(id="7", name="Ada", email="ada@example.com")
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))
    done = sailor(
        component_dir, "select-model", "newOrUpdatedConversations", "admins", "--cfg", str(cfg_file)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"7": "Ada (ada@example.com)"}
