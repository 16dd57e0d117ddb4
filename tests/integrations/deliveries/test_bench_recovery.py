"""bench/recovery.py once, with a short lease and grace, so it never rots: it must finish and
print its figures. The figures themselves are the benchmark's to report, not asserted here."""

import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.processes


def test_recovery_benchmark_runs_and_prints_its_figures():
    result = subprocess.run(
        [
            sys.executable,
            "bench/recovery.py",
            *("--backend", "sqlite", "--runs", "1", "--lease", "2", "--grace", "1"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    figures = dict(pair.split("=", 1) for pair in result.stdout.split())
    assert (figures["backend"], figures["runs"], figures["lease_s"]) == ("sqlite", "1", "2")
    for name in ("kill_median_s", "flush_median_s"):
        assert 0 < float(figures[name]) < 60
