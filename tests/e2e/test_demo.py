"""The README's first command (`python -m tools.demo`) runs real actions and prints their events."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_demo_prints_the_events_of_real_actions():
    result = subprocess.run(
        [sys.executable, "-m", "tools.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("  {")]
    data = [e for e in events if e["event"] == "data"]
    listed = [f"user{i}@example.com" for i in range(5)]
    assert [e["data"]["email"] for e in data] == [*listed, "grace@example.com"]
    assert [e["error"]["status"] for e in events if e["event"] == "error"] == [404]
    assert "GET /contacts?starting_after=" in result.stdout  # the pagination was followed
