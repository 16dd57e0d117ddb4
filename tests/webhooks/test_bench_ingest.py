"""bench/ingest.py with a tiny load, so it never rots: counts are asserted, never speed."""

import re
import subprocess
import sys

import psycopg
import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.processes

SERVER = "postgresql://postgres@127.0.0.1:5432"


def _postgres_available() -> bool:
    try:
        psycopg.connect(f"{SERVER}/postgres", connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


@pytest.mark.skipif(not _postgres_available(), reason="bench/ingest.py needs PostgreSQL")
def test_ingest_bench_accepts_persists_and_processes_every_event():
    result = subprocess.run(
        [
            sys.executable,
            "bench/ingest.py",
            "--duration",
            "1",
            "--concurrency",
            "2",
            "--pg",
            SERVER,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio ingest/bare" in result.stdout
    counts = re.search(r"accepted (\d+)\s+persisted (\d+)\s+processed (\d+)", result.stdout)
    accepted, persisted, processed = map(int, counts.groups())
    assert accepted > 0
    assert accepted == persisted == processed
