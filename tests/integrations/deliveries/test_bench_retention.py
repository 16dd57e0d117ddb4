"""bench/retention.py at a tiny scale on SQLite, so it never rots: counts are asserted, never
speed."""

import re
import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.processes


def test_retention_bench_purges_exactly_the_expired_rows():
    result = subprocess.run(
        [
            sys.executable,
            "bench/retention.py",
            "--backend",
            "sqlite",
            "--scale",
            "0.0005",
            "--baseline",
            "1",
            "--concurrency",
            "1",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deliveries=500 attempts=2500" in result.stdout
    purged = re.search(r"^purged (\d+) rows .* longest_lock_ms [\d.]+", result.stdout, re.M)
    assert purged and int(purged.group(1)) == 475 * 6, result.stdout
    assert re.search(r"^api during purge .* p99 +[\d.]+ ms$", result.stdout, re.M), result.stdout
