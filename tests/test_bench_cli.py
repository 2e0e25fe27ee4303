"""The benchmarks' command lines: tiny runs give a figure, bad options a usage error (no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import worker

ROOT = Path(__file__).resolve().parents[1]


class _Depths:
    """Stands for the broker in bench.worker.measure: the output queue's depth at each poll."""

    def __init__(self, depths: list[int]) -> None:
        self.depths = iter(depths)
        self.connection = self

    def count(self, _queue: str) -> int:
        return next(self.depths)

    def sleep(self, _seconds: float) -> None:
        pass


@pytest.mark.parametrize("depths", [[0, 0, 10], [10], [0, 4, 10]])
def test_worker_measure_gives_a_positive_rate_however_the_messages_arrive(depths):
    assert worker.measure(_Depths(depths), "out", 10, timeout=5) > 0


@pytest.mark.parametrize(
    "command, option",
    [
        (["bench.actions", "--runs", "0"], "--runs"),
        (["bench.actions", "--iterations", "0"], "--iterations"),
        (["bench.worker", "--messages", "0"], "--messages"),
        (["bench.worker", "--repeat", "0"], "--repeat"),
        (["bench.peer", "--rounds", "0"], "--rounds"),
        (["bench.peer", "--cpu-messages", "0"], "--cpu-messages"),
    ],
)
def test_a_count_below_one_is_a_usage_error_naming_the_option(command, option):
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert option in result.stderr and "at least 1" in result.stderr and "Traceback" not in result.stderr
