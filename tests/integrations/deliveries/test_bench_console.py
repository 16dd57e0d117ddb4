"""bench/console.py at a tiny scale on SQLite, so it never rots: every page answers 200 and the
rollup counts every seeded attempt; speed is not asserted."""

import re
import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.processes


def test_console_bench_fetches_every_page():
    result = subprocess.run(
        [
            sys.executable,
            "bench/console.py",
            "--backend",
            "sqlite",
            "--scale",
            "0.0005",
            "--repeat",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deliveries=500 attempts=2500" in result.stdout
    assert "rollup caught up: 2500 attempts" in result.stdout
    pages = re.findall(r"^ +[\d.]+ ms  status (\d+)  (\S+)", result.stdout, re.M)
    assert len(pages) == 32 and {status for status, _ in pages} == {"200"}, result.stdout
