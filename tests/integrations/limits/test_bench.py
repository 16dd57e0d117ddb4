"""bench/deliver.py with a tiny N, so it never rots: it must finish and count right. Its speed
is reported by the benchmark, never asserted here."""

import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.processes


def test_delivery_benchmark_runs_and_counts(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/deliver.py", "--n", "20", "--backend", "sqlite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    figures = dict(pair.split("=", 1) for pair in result.stdout.split())
    assert (figures["backend"], figures["n"]) == ("sqlite", "20")
    assert (figures["drain_succeeded"], figures["stream_succeeded"]) == ("20", "20")
    for name in ("engine_per_s", "baseline_per_s", "ratio", "p50_ms", "p99_ms"):
        assert float(figures[name]) > 0
    assert float(figures["worker_peak_rss_mb"]) > 0
    # Where the stream's CPU went, per role (/proc counts in ticks of 10 ms: with 20 deliveries
    # only the busiest roles surely pass one).
    by_role = dict(pair.split(":") for pair in figures["stream_cpu_ms_by_role"].split(","))
    assert set(by_role) == {"web", "worker", "dispatcher", "provider", "client"}
    assert all(float(ms) >= 0 for ms in by_role.values()), by_role
    assert float(by_role["web"]) > 0 and float(by_role["worker"]) > 0, by_role
    assert float(figures["stream_cpu_ms"]) >= max(map(float, by_role.values()))
    assert float(figures["stream_cpu_bound_ratio"]) > 0
