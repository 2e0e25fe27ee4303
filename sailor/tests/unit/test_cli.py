"""The command line: output lines, exit codes, message files, stdin, snapshots, no secret in any output."""

import json
import logging
import subprocess
import sys
import types

import pytest
from elasticio_sailor import cli

from .conftest import FIXTURE, REGION, SECRET


@pytest.fixture(autouse=True)
def restore_logging():
    """cli.main installs a handler on the (captured) stderr; take it away again after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def files(tmp_path, cfg):
    def write(name, obj):
        path = tmp_path / name
        path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
        return str(path)

    write.cfg = write("cfg.json", cfg)
    return write


def run(capsys, *argv):
    code = cli.main([*argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_exec_prints_one_line_per_event_and_exits_0(capsys, files):
    code, lines, _ = run(
        capsys,
        "exec",
        "returnValue",
        "--cfg",
        files.cfg,
        "--msg",
        files("m.json", {"data": {"style": "dict"}}),
        "--component",
        str(FIXTURE),
    )
    assert code == 0
    assert lines == [{"event": "data", "data": {"x": 2}, "metadata": {"m": True}, "attachments": {}}]


def test_exec_bare_dict_message_file_is_the_data(capsys, files):
    code, lines, _ = run(
        capsys, "exec", "echo", "--msg", files("m.json", {"email": "a@b.c"}), "--component", str(FIXTURE)
    )
    assert code == 0 and lines[0]["data"] == {"email": "a@b.c"}


def test_exec_exits_1_on_error_event_and_keeps_secrets_out(capsys, files):
    code, lines, err = run(capsys, "exec", "raises", "--cfg", files.cfg, "--component", str(FIXTURE))
    assert code == 1
    assert lines == [
        {
            "event": "error",
            "error": {
                "name": "FixtureError",
                "message": "401 Unauthorized (token ***, region ***)",
                "status": 401,
                "code": "unauthorized",
                "request_id": "req-1",
                "headers": {"Authorization": "***"},
            },
        }
    ]
    assert "FixtureError" in err  # the logged traceback
    assert SECRET not in err and REGION not in err


def test_exec_final_snapshot_after_update_snapshot(capsys, files, tmp_path):
    out_file = tmp_path / "snap-out.json"
    code, lines, _ = run(
        capsys,
        "exec",
        "poll",
        "--snapshot",
        files("s.json", {"since": 20, "other": 1}),
        "--snapshot-out",
        str(out_file),
        "--component",
        str(FIXTURE),
    )
    assert code == 0
    assert [e["event"] for e in lines] == ["data", "updateSnapshot", "snapshot"]
    assert lines[-1] == {"event": "snapshot", "snapshot": {"since": 30, "other": 1}, "final": True}
    assert json.loads(out_file.read_text()) == {"since": 30, "other": 1}


def test_exec_no_final_line_when_nothing_changed_or_full_snapshot_was_last(capsys, files, tmp_path):
    _, lines, _ = run(
        capsys, "exec", "poll", "--snapshot", files("s.json", {"since": 30}), "--component", str(FIXTURE)
    )
    assert lines == []
    _, lines, _ = run(capsys, "exec", "fullSnapshot", "--component", str(FIXTURE))
    assert lines == [{"event": "snapshot", "snapshot": {"page": 1}}]


def test_exec_self_emitted_kinds_and_final_snapshot(capsys):
    code, lines, _ = run(capsys, "exec", "selfEmit", "--component", str(FIXTURE))
    assert code == 1  # it emits an error
    assert [e["event"] for e in lines] == [
        "data",
        "data",
        "snapshot",
        "updateSnapshot",
        "rebound",
        "updateKeys",
        "httpReply",
        "error",
        "data",
        "snapshot",
    ]
    assert lines[-1]["snapshot"] == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["exec", "nope"], "no trigger or action named 'nope'"),
        (["exec", "missingMain"], "not_there.py"),
        (["exec", "echo", "--msg", "/nonexistent.json"], "cannot read --msg /nonexistent.json"),
        (["exec", "echo", "--cfg", "-", "--msg", "-"], "only one of --cfg and --msg"),
        (["exec"], "required: function"),
        (["frobnicate"], "invalid choice"),
        (["select-model", "poll", "nope"], "no nope(cfg)"),
        (["meta-model", "echo"], "getMetaModel"),
    ],
)
def test_usage_and_configuration_errors_exit_2_with_one_line(capsys, argv, message):
    code = cli.main(
        [*argv, "--component", str(FIXTURE)] if argv[0] != "frobnicate" and argv != ["exec"] else argv
    )
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_bad_json_files_exit_2(capsys, files):
    for flag in ("--cfg", "--msg", "--snapshot"):
        code = cli.main(["exec", "echo", flag, files("bad.json", "{oops"), "--component", str(FIXTURE)])
        assert code == 2 and "is not JSON" in capsys.readouterr().err
    code = cli.main(["exec", "echo", "--cfg", files("list.json", [1]), "--component", str(FIXTURE)])
    assert code == 2 and "must hold a JSON object" in capsys.readouterr().err


def test_missing_component_exits_2(capsys, tmp_path):
    assert cli.main(["list", "--component", str(tmp_path)]) == 2
    assert "no component.json" in capsys.readouterr().err


def test_component_defaults_to_component_path_env(capsys, monkeypatch):
    monkeypatch.setenv("COMPONENT_PATH", str(FIXTURE))
    assert cli.main(["list", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"type": "trigger", "id": "poll", "title": "Poll things"}
    assert {"type": "action", "id": "echo", "title": "Echo the message"} in lines


def test_list_text(capsys):
    assert cli.main(["list", "--component", str(FIXTURE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split(None, 2) == ["trigger", "poll", "Poll things"]
    assert any(line.split(None, 2) == ["action", "echo", "Echo the message"] for line in out)


def test_verify(capsys, files):
    code, lines, _ = run(
        capsys,
        "verify",
        "--cfg",
        files("good.json", {"apiSecretValue": "good-secret"}),
        "--component",
        str(FIXTURE),
    )
    assert code == 0 and lines == [{"verified": True}]
    code, lines, err = run(capsys, "verify", "--cfg", files.cfg, "--component", str(FIXTURE))
    assert code == 1 and lines == [{"verified": False, "reason": "HTTP 401 for token ***"}]
    assert SECRET not in err


def test_select_model_and_meta_model(capsys):
    code, lines, _ = run(capsys, "select-model", "poll", "kinds", "--component", str(FIXTURE))
    assert code == 0 and lines == [{"a": "Kind A", "b": "Kind B"}]
    code, lines, _ = run(capsys, "meta-model", "poll", "--component", str(FIXTURE))
    assert code == 0 and lines[0]["in"] == {"type": "object"}


def test_run_delegates_to_the_worker(capsys, monkeypatch):
    calls = []
    fake = types.ModuleType("elasticio_sailor.worker")
    fake.main = lambda: calls.append("run") or 3
    monkeypatch.setitem(sys.modules, "elasticio_sailor.worker", fake)
    assert cli.main(["run"]) == 3 and calls == ["run"]


def test_run_without_worker_module_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "elasticio_sailor.worker", None)
    assert cli.main(["run"]) == 2
    assert "AMQP worker" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_python_dash_m_with_stdin_and_no_secret_in_any_output(tmp_path, cfg):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))
    outputs = []
    for function, expected in (("raises", 1), ("echo", 0), ("generator", 0)):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "elasticio_sailor",
                "exec",
                function,
                "--cfg",
                str(cfg_file),
                "--msg",
                "-",
                "--component",
                str(FIXTURE),
            ],
            input=json.dumps({"data": {"count": 2}}),
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "debug"},
        )
        assert proc.returncode == expected, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    assert '"event":"error"' in outputs[0] and '"level":"warn"' in outputs[0]
    assert outputs[2].count('"event":"data"') == 2
    assert all(SECRET not in text and REGION not in text for text in outputs)
