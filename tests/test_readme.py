"""README.md keeps its promises: the two commands first, the actions table in step with component.json,
and every command it shows runs as it says."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.readme import actions_table, render

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_actions_table_matches_component_json():
    component = json.loads((ROOT / "component.json").read_text())
    assert render(README, component) == README, "README's actions table is stale: run python -m tools.readme"
    rows = re.findall(r"^\| `([^`]+)` \|", README, re.M)
    assert set(component["actions"]) <= set(rows)


def test_every_action_row_names_its_intercom_call():
    """Deprecated actions too: their description starts with "Deprecated: ...", the call comes after it."""
    component = json.loads((ROOT / "component.json").read_text())
    table = [line for line in actions_table(component).splitlines() if line.startswith("| `")]
    assert len(table) == len(component["actions"])
    empty = [row for row in table if " |  | " in row]
    assert empty == []
    assert "| `deleteVisitor` | Delete a visitor (deprecated) | `DELETE /visitors/{id}` | 2.8 |" in table
    assert "| `createTicket` | Create a ticket | `POST /tickets` | 2.16 |" in table


def test_the_count_of_list_actions_is_component_jsons():
    component = json.loads((ROOT / "component.json").read_text())
    lists = [a for a in component["actions"].values() if "emitBehaviour" in (a.get("fields") or {})]
    assert f"The {len(lists)} list, search and scroll actions have the step field `emitBehaviour`" in README


def test_every_place_what_is_in_the_box_names_exists_and_its_counts_are_component_jsons():
    """The layout table is what a new maintainer reads first: each file or folder it names is there
    (a bare module name, as `env.py`, is a file of that name under the row's folder)."""
    table = README[README.index("## What is in the box") : README.index("## Using a real workspace")]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    paths = {f"/{line}" for line in tracked.splitlines()}
    places = [
        name for name in re.findall(r"`([\w./-]+)`", table) if "/" in name or name.endswith((".py", ".json"))
    ]
    missing = [name for name in places if not any(f"/{name.strip('/')}" in path for path in paths)]
    assert len(places) > 20 and missing == []
    component = json.loads((ROOT / "component.json").read_text())
    assert (
        f"{len(component['actions'])} actions" in table and f"{len(component['triggers'])} triggers" in table
    )


def test_the_image_base_is_the_dockerfiles():
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)[1]
    assert f"The image is built on `{base}`" in README


def test_the_two_commands_come_first():
    demo = README.index("<!-- demo-command -->")
    tests = README.index("<!-- test-command -->")
    assert demo < tests < README.index("\n## ")
    assert "python -m tools.demo" in README[demo:tests]
    assert "-m pytest" in README[tests : README.index("\n## ")]


def test_ci_runs_exactly_the_readme_test_command():
    """.ci/run extracts the line after the marker; check the extraction finds the README's command."""
    line = README[README.index("<!-- test-command -->") :].splitlines()[2]
    script = (ROOT / ".ci" / "run").read_text()
    extraction = re.search(r"test_command=\$\((awk .*README\.md)\)", script)
    assert extraction, ".ci/run no longer reads the README's test command"
    found = subprocess.run(["bash", "-c", extraction.group(1)], cwd=ROOT, capture_output=True, text=True)
    found = found.stdout
    assert found.strip() == line.strip() and "pytest" in line


# ---- every command the README shows is run -----------------------------------------------------------------
# The README's commands, found in its ```sh blocks (continuation lines joined, trailing comments dropped) and
# in inline `python -m ...` spans, must each be one of COMMANDS below; the tests run them as they stand, from
# a sandbox laid out as the repository root (links to its files, and to this interpreter's environment as
# .venv), so that what they write (cfg.json, snap.json...) stays out of the repository. Two changes, for a
# shared machine: the fake Intercom's port 8080 becomes a free port; the benchmarks get their smallest
# options.
DEMO = (
    "python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && .venv/bin/python -m tools.demo"
)
FAKE = ".venv/bin/python -m tools.fake_intercom --port 8080"
CFG = (
    'echo \'{"accessToken":"test-token","server":"custom","otherServer":"http://127.0.0.1:8080",'
    '"startTime":"2024-05-01"}\' > cfg.json'
)
SNAP = "echo '{}' > snap.json"
POLL = ".venv/bin/python -m elasticio_sailor exec newOrUpdatedContacts --cfg cfg.json --snapshot snap.json"
POLL_SAVING = POLL + " --snapshot-out snap.json"
LIST = ".venv/bin/python -m elasticio_sailor list"
MSG = 'echo \'{"data": {"requestBody": {"email": "ada@example.com"}}}\' > msg.json'
EXEC = ".venv/bin/python -m elasticio_sailor exec CreateContact --cfg cfg.json --msg msg.json"
VERIFY = ".venv/bin/python -m elasticio_sailor verify --cfg cfg.json"
SELECT = ".venv/bin/python -m elasticio_sailor select-model retrieveTeam teams --cfg cfg.json"
WORKER = "python -m elasticio_sailor run"
REGENERATE = (
    ".venv/bin/python -m tools.generate",
    ".venv/bin/python -m tools.generate --check",
    ".venv/bin/python -m tools.readme",
)
BENCH = {
    ".venv/bin/python -m bench.actions": "--iterations 20 --runs 1",
    ".venv/bin/python -m bench.worker": "--messages 10 --repeat 1",
}
RUN_ELSEWHERE = {
    "docker build -t intercom-connector .": "tests/test_docker.py",
    "docker run --rm --env-file worker.env intercom-connector": "tests/test_docker.py",
    'docker run --rm -v "$PWD/cfg.json:/cfg.json:ro" --entrypoint python intercom-connector '
    "-m elasticio_sailor verify --cfg /cfg.json": "tests/test_docker.py",
    "python -m elasticio_sailor exec": "tests/e2e/test_exec.py (named in prose, not a command line)",
    ".venv/bin/python -m bench.peer": "tests/e2e/test_bench_smoke.py (its smallest options, ~25 s)",
}
COMMANDS = {
    DEMO,
    FAKE,
    CFG,
    SNAP,
    POLL,
    POLL_SAVING,
    LIST,
    MSG,
    EXEC,
    VERIFY,
    SELECT,
    WORKER,
    *REGENERATE,
    *BENCH,
    *RUN_ELSEWHERE,
}


def readme_commands() -> list[str]:
    """Each command line of the README once, in order."""
    found: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", README, re.M | re.S):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        found += [re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines()]
    found += re.findall(r"(?<!`)`((?:\.venv/bin/)?python -m [^`]+)`", README)
    return list(dict.fromkeys(line for line in found if line and not line.startswith("#")))


def shown(command: str) -> str:
    assert command in readme_commands(), f"README.md no longer shows {command!r}: update this test with it"
    return command


def test_every_command_the_readme_shows_is_run_by_a_test():
    test_command = README[README.index("<!-- test-command -->") :].splitlines()[2]  # see the test above
    assert [c for c in readme_commands() if c not in COMMANDS | {test_command}] == []


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A directory laid out as the repository root, whose .venv is the environment running these tests."""
    root = tmp_path_factory.mktemp("readme")
    for name in ("component.json", "lib", "schemas", "tools", "bench", "sailor", "tests", "requirements.txt"):
        (root / name).symlink_to(ROOT / name)
    link_venv(root)
    return root


def link_venv(root: Path) -> None:
    if sys.prefix != sys.base_prefix:
        (root / ".venv").symlink_to(sys.prefix)
    else:  # a plain interpreter: .venv/bin/python is that interpreter
        (root / ".venv" / "bin").mkdir(parents=True)
        (root / ".venv" / "bin" / "python").symlink_to(sys.executable)


def shell(command: str, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """One README line through bash, with the sandbox's .venv first on PATH (as after activating it)."""
    path = f"{cwd / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICIO_")}
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, "PATH": path, **env},
    )


def events(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def fake_port(sandbox: Path) -> Iterator[str]:
    """The README's fake Intercom, started with its own command (on a free port); yields that port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + shown(FAKE).replace("8080", port)],
        cwd=sandbox,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and "Fake Intercom on" in proc.stdout.readline()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.timeout(120)
def test_the_demo_command(sandbox: Path):
    """Its last part; the venv and install parts are the test command's, which CI runs on a clean clone."""
    demo = shown(DEMO).split("&&")[-1].strip()
    result = shell(demo, sandbox, timeout=100)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "requests the fake Intercom received: GET /contacts" in result.stdout


@pytest.mark.timeout(120)
def test_the_polling_example(sandbox: Path, fake_port: str):
    assert shell(shown(CFG).replace("8080", fake_port), sandbox).returncode == 0
    assert shell(shown(SNAP), sandbox).returncode == 0
    first = shell(shown(POLL_SAVING), sandbox)
    assert first.returncode == 0, first.stderr
    assert [e["event"] for e in events(first)] == ["data"] * 5 + ["snapshot"]  # as the README says
    assert "The first run prints the fake's five contacts" in README
    assert json.loads((sandbox / "snap.json").read_text())["updated_at"] > 0
    again = shell(shown(POLL), sandbox)
    assert (again.returncode, again.stdout) == (0, ""), again.stderr  # "the second nothing"


@pytest.mark.timeout(120)
def test_the_harness_block_and_the_verifier_output_it_promises(sandbox: Path, fake_port: str):
    cfg = {"accessToken": "test-token", "server": "custom", "otherServer": f"http://127.0.0.1:{fake_port}"}
    (sandbox / "cfg.json").write_text(json.dumps(cfg))
    listing = shell(shown(LIST), sandbox)
    component = json.loads((ROOT / "component.json").read_text())
    assert len(listing.stdout.splitlines()) == len(component["triggers"]) + len(component["actions"])
    assert shell(shown(MSG), sandbox).returncode == 0
    created = shell(shown(EXEC), sandbox)
    assert created.returncode == 0 and events(created)[0]["data"]["email"] == "ada@example.com", created
    good = shell(shown(VERIFY), sandbox)
    assert good.returncode == 0 and f"`{good.stdout.strip()}` (exit code 0)" in README, good
    (sandbox / "cfg.json").write_text(json.dumps({**cfg, "accessToken": "not-the-token"}))
    bad = shell(VERIFY, sandbox)
    assert bad.returncode == 1 and f"`{bad.stdout.strip()}` (exit code 1)" in README, bad
    (sandbox / "cfg.json").write_text(json.dumps(cfg))
    teams = shell(shown(SELECT), sandbox)
    assert teams.returncode == 0 and json.loads(teams.stdout) == {"5017001": "Support"}, teams


@pytest.mark.timeout(120)
def test_the_python_example(sandbox: Path, fake_port: str):
    (sandbox / "cfg.json").write_text(
        json.dumps(
            {"accessToken": "test-token", "server": "custom", "otherServer": f"http://127.0.0.1:{fake_port}"}
        )
    )
    snippet = re.search(r"^```python\n(.*?)^```", README, re.M | re.S)[1]
    result = subprocess.run(
        [sys.executable, "-c", snippet + "print(json.dumps(events))"],
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [e["event"] for e in listed] == ["data"]
    assert {f"user{i}@example.com" for i in range(5)} <= {c["email"] for c in listed[0]["data"]["data"]}


@pytest.mark.timeout(60)
def test_the_worker_command_names_a_missing_variable(sandbox: Path):
    result = shell(shown(WORKER), sandbox)
    assert result.returncode == 1
    assert re.search(r"ELASTICIO_[A-Z_]+ is missing", result.stdout + result.stderr), result


@pytest.mark.timeout(300)
def test_the_regenerate_block_reproduces_the_committed_catalogue(tmp_path: Path):
    """In a copy of the repository (the generator writes next to itself), from Intercom's descriptions."""
    spec = os.environ.get("INTERCOM_SPEC_DIR") or str(ROOT.parent / "shared" / "intercom")
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("lib", "schemas", "tools"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("component.json", "README.md", "pyproject.toml"):  # pyproject: ruff's settings
        shutil.copy2(ROOT / name, copy / name)
    link_venv(copy)
    for line in REGENERATE:
        result = shell(shown(line), copy, timeout=240, INTERCOM_SPEC_DIR=spec)
        assert result.returncode == 0, f"{line}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    for name in ("lib", "schemas"):
        diff = subprocess.run(
            ["diff", "-r", "-x", "__pycache__", str(ROOT / name), str(copy / name)],
            capture_output=True,
            text=True,
        )
        assert diff.returncode == 0, diff.stdout[-3000:]
    for name in ("component.json", "README.md"):
        assert (copy / name).read_text() == (ROOT / name).read_text(), f"{name} differs once regenerated"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("line", sorted(BENCH))
def test_the_benchmark_lines_with_their_smallest_options(sandbox: Path, line: str):
    result = shell(f"{shown(line)} {BENCH[line]}", sandbox, timeout=540)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert re.search(r"ratio|python/raw", result.stdout), result.stdout


@pytest.mark.timeout(60)
def test_the_message_contract_examples_against_the_fake():
    """The query example (`lisDataEvents`) and the renamed parameter (`listCompaniesForAContact`)."""
    from elasticio_sailor import execute

    from tools.fake_intercom import FakeIntercom

    example = re.search(
        r"`(\{\"type\": \"user\", \"filter\":\s+\{\"user_id\": \"42\"\}\})` "
        r"on `lisDataEvents` becomes `GET (/events\?\S+)`",
        README,
    )
    assert example, "the README's lisDataEvents example moved: update this test"
    data, request = json.loads(re.sub(r"\s+", " ", example[1])), example[2]
    with FakeIntercom(seed=False) as fake:
        contact = fake.add_contact(email="ada@example.com", external_id="42")
        company = fake.add_company(company_id="acme", name="Acme")
        fake.events.append({"event_name": "ordered", "user_id": "42", "created_at": 1717000000})
        cfg = {"accessToken": fake.token, "server": "custom", "otherServer": fake.url}
        listed = execute("lisDataEvents", {"data": data}, cfg, component_dir=str(ROOT))
        sent = fake.requests[-1]
        assert f"{sent.path}?" + "&".join(f"{k}={v}" for k, v in sent.query.items()) == request
        assert [e["data"]["events"][0]["event_name"] for e in listed] == ["ordered"], listed
        fake.handle(
            "POST",
            f"/contacts/{contact['id']}/companies",
            {"Authorization": f"Bearer {fake.token}"},
            json.dumps({"id": company["id"]}).encode(),
        )
        assert "`listCompaniesForAContact` accepts `contact_id`" in README
        attached = execute(
            "listCompaniesForAContact", {"data": {"contact_id": contact["id"]}}, cfg, component_dir=str(ROOT)
        )
        assert [e["data"]["data"][0]["id"] for e in attached] == [company["id"]], attached
