"""The action benchmark still runs (a few calls), so its figures in bench/README.md can be reproduced."""
import pytest

from bench.actions import CASES, measure, report, start_server

pytestmark = pytest.mark.timeout(120)


def test_benchmark_measures_each_side_of_each_case():
    process, url = start_server()
    try:
        for action in CASES:
            result = measure(action, url, iterations=20, runs=1)
            assert set(result["per_s"]) == {"ours", "raw", "raw_lean"}
            assert all(rate > 0 for rate in result["per_s"].values())
            per_s = result["per_s"]
            assert result["ratio"] == pytest.approx(per_s["raw"] / per_s["ours"], rel=0.01)
            assert "ratio raw/ours" in report(result)
    finally:
        process.terminate()
        process.wait(5)
