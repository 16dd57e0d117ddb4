"""bench/api.py with a tiny load on SQLite, so it never rots: counts are asserted, never speed."""

import re
import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.processes


def test_api_bench_stores_every_accepted_delivery():
    result = subprocess.run(
        [
            sys.executable,
            "bench/api.py",
            "--backend",
            "sqlite",
            "--duration",
            "1",
            "--concurrency",
            "2",
            "--workers",
            "1",
            "--batch",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    accepted, stored = map(int, re.search(r"accepted (\d+)  stored (\d+)", result.stdout).groups())
    assert accepted == stored > 0
    assert re.search(r"^accept\+key .* ratio [\d.]+$", result.stdout, re.M), result.stdout
    batch_line = r"^batch of 5 .* errors 0 .*x single POSTs$"
    assert re.search(batch_line, result.stdout, re.M), result.stdout
