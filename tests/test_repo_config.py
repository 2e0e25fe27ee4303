"""Repository settings that protect users: credentials files stay out of git and the image; excludes exist."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CREDENTIAL_FILES = ("cfg.json", "snap.json", "msg.json", "worker.env")  # what the README's examples write


def test_git_ignores_the_files_the_readme_examples_write():
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *CREDENTIAL_FILES], cwd=ROOT, capture_output=True, text=True
    )
    assert sorted(result.stdout.split()) == sorted(CREDENTIAL_FILES), result.stdout + result.stderr


def test_the_build_context_is_only_what_the_dockerfile_copies():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "the .dockerignore should start by excluding everything"
    copied = {
        line.split()[1].rstrip("/")
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
    }
    assert {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")} == copied


def test_every_path_ruff_excludes_exists_or_is_a_pattern():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    for path in config.get("extend-exclude", []):
        assert "*" in path or (ROOT / path).exists() or path == ".venv", f"ruff excludes a missing {path}"
