"""The benchmarks still run (a few calls or messages), so the figures in bench/README.md can be reproduced."""

import json

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


@pytest.mark.timeout(300)
def test_peer_benchmark_runs_every_side_of_every_scenario(tmp_path, capsys):
    """bench/peer.py with the smallest options: both OIH runtimes (the original under its ferryman, npm ci'd
    into a temporary folder) and both elastic.io sailors each deliver every message of every scenario."""
    from bench import peer

    out = tmp_path / "peer.json"
    assert (
        peer.main(
            [
                "--rounds",
                "1",
                "--latency-messages",
                "12",
                "--cpu-messages",
                "15",
                "--extra-env",
                "6",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    runs = json.loads(out.read_text())["runs"]
    expected = {
        f"{scenario}/{side}" for scenario in ("latency", "cpu", "cpu+env") for side in ("ours", "original")
    }
    assert set(runs) == expected | {"elasticio/ours", "elasticio/node", "latency/bare"}
    assert runs.pop("latency/bare")["msg_per_s"][0] > 0  # the ceiling: no runtime, so only a rate
    for name, figures in runs.items():
        assert figures["msg_per_s"][0] > 0 and figures["cpu_ms"][0] >= 0, name  # CPU in 10 ms ticks
        assert figures["rss_mb"][0] > 10 and figures["startup_s"][0] > 0, name
    table = capsys.readouterr().out
    assert "| 50 ms API latency, 12 msgs: msg/s (ideal 200) |" in table and "ours/Node" in table
    assert "ceiling: 10 bare requests threads" in table
