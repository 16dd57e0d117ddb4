"""Recovery benchmark: how long a delivery waits when its worker is SIGKILLed mid-send, and when
the broker is flushed with work queued in it, measured through real processes.

    .venv/bin/python bench/recovery.py [--backend sqlite|postgres] [--runs 3]
                                       [--lease 10] [--grace 5]

It makes a throwaway database (a SQLite file in a temporary directory with the ORM broker, or a
PostgreSQL database with Redis as broker; both removed afterwards), migrates it, seeds one
customer whose generic HTTP integration points at a fake provider server of its own, and starts
web (gunicorn), a worker cluster and the dispatcher with the default settings (lease and grace
from ``--lease`` and ``--grace``). Then, ``--runs`` times each:

1. kill: a delivery whose first send hangs at the provider; once the provider has it, after a
   random part of a heartbeat interval (so the kill falls anywhere in the renewal cycle), the
   whole worker cluster gets SIGKILL and a new one starts at once. ``kill_s``: from the kill to
   the provider receiving the second send.
2. flush: with the worker cluster stopped, five deliveries are accepted through the API and
   queued (the web process queues the first at once, the relay the rest); the broker is flushed
   (Redis FLUSHDB on the bench's own database, or every ORM broker row) and a worker cluster
   starts. ``flush_s``: from the flush to the provider receiving the last of the five (it
   includes the worker cluster's start, one to two seconds).

Each run checks that every delivery succeeded, the flushed ones sent once each. It prints each
run and the medians, next to the bounds the settings give (``lease`` plus a tenth of it plus a
``dispatch interval``, and ``grace + dispatch interval``) and the enqueue timeout, the upper bound.

PostgreSQL and Redis are reached at BENCH_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432/postgres, used only to create and drop the database) and
BENCH_RECOVERY_REDIS_URL (default redis://127.0.0.1:6379/9: that database alone is flushed,
before, during and after)."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throwaway import Platform  # noqa: E402
from tests.processes import free_port  # noqa: E402

FLUSHED = 5
DISPATCH_INTERVAL = 0.5  # the default
ENQUEUE_TIMEOUT = 120  # the default


def query(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Read or write the benchmark's database directly, as bench/deliver.py does."""
    if database_url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
        try:
            with conn:
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


class Bench(Platform):
    def __init__(self, backend: str, workdir: Path, lease: float, grace: float):
        super().__init__(
            backend,
            workdir,
            name="recovery",
            redis_url=os.environ.get("BENCH_RECOVERY_REDIS_URL", "redis://127.0.0.1:6379/9"),
            SWITCHYARD_LEASE_SECONDS=f"{lease:g}",
            SWITCHYARD_ENQUEUE_GRACE_SECONDS=f"{grace:g}",
        )
        self.lease, self.grace = lease, grace

    def setup(self) -> None:
        super().setup()
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {self.raw_key}"
        self.web_url = self.stack.start_web(free_port(), workers=1)
        self.stack.start_worker()
        self.stack.start_dispatcher()

    # --- helpers --------------------------------------------------------------------------------

    def fake(self, method: str, path: str, **payload):
        response = requests.request(method, f"{self.fake_url}{path}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def received(self, prefix: str) -> list[float]:
        journal = self.fake("GET", f"/_journal?path_prefix=/http{prefix}")["requests"]
        return sorted(entry["at"] for entry in journal)

    def post(self, order: str) -> int:
        body = {"customer": "bench", "action": "http.request", "input": {"path": order}}
        response = self.api.post(f"{self.web_url}/api/v1/deliveries/", json=body, timeout=30)
        if response.status_code != 202:
            raise RuntimeError(f"API answered {response.status_code}: {response.text}")
        return response.json()["id"]

    def statuses(self, ids: list[int]) -> list[tuple]:
        marks = ",".join(["%s"] * len(ids))
        sql = f"SELECT status, attempts FROM integrations_delivery WHERE id IN ({marks})"
        return query(self.database_url, sql, tuple(ids))

    def wait(self, predicate, what: str, timeout: float = 300) -> None:
        self.stack.wait_for(predicate, what=what, timeout=timeout)

    def restart_worker(self) -> None:
        if "worker" in self.stack.processes:
            self.stack.kill("worker")
        self.stack.start_worker()

    # --- the two measurements -------------------------------------------------------------------

    def kill(self, run: int) -> float:
        prefix = f"/orders/kill-{run}"
        self.fake("POST", "/_faults", path_prefix=f"/http{prefix}", latency_ms=25_000, count=1)
        delivery_id = self.post(prefix)
        self.wait(lambda: self.received(prefix), what="the first send")
        time.sleep(random.uniform(0, self.lease / 3))  # anywhere in the renewal cycle
        self.stack.kill("worker")
        killed_at = time.time()
        self.stack.start_worker()
        self.wait(lambda: len(self.received(prefix)) >= 2, what="the send after the kill")
        recovered = self.received(prefix)[1] - killed_at
        self.wait(lambda: self.statuses([delivery_id])[0][0] == "succeeded", what="success")
        return recovered

    def flush(self, run: int) -> float:
        prefix = f"/orders/flush-{run}-"
        self.stack.kill("worker")
        ids = [self.post(f"{prefix}{n}") for n in range(FLUSHED)]
        marks = ",".join(["%s"] * len(ids))
        unqueued = (
            f"SELECT count(*) FROM integrations_delivery WHERE id IN ({marks}) "
            "AND enqueued_until IS NULL"
        )
        self.wait(
            lambda: query(self.database_url, unqueued, tuple(ids))[0][0] == 0,
            what="every delivery queued",
        )
        if self.redis_url:
            self.flush_redis()
        else:
            query(self.database_url, "DELETE FROM django_q_ormq")
        flushed_at = time.time()
        self.stack.start_worker()
        self.wait(lambda: len(self.received(prefix)) >= FLUSHED, what="the flushed deliveries")
        recovered = self.received(prefix)[-1] - flushed_at
        self.wait(
            lambda: self.statuses(ids) == [("succeeded", 1)] * FLUSHED,
            what="each flushed delivery succeeded with one attempt",
        )
        if len(self.received(prefix)) != FLUSHED:
            raise AssertionError("a flushed delivery was sent twice")
        return recovered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lease", type=float, default=10.0, help="SWITCHYARD_LEASE_SECONDS")
    parser.add_argument("--grace", type=float, default=5.0, help="SWITCHYARD_ENQUEUE_GRACE_SECONDS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sy-bench-recovery-") as workdir:
        bench = Bench(args.backend, Path(workdir), args.lease, args.grace)
        try:
            bench.setup()
            print(
                f"backend={args.backend} runs={args.runs} lease_s={args.lease:g} "
                f"grace_s={args.grace:g} dispatch_interval_s={DISPATCH_INTERVAL:g} "
                f"enqueue_timeout_s={ENQUEUE_TIMEOUT}",
                flush=True,
            )
            kills, flushes = [], []
            for run in range(1, args.runs + 1):
                kills.append(bench.kill(run))
                flushes.append(bench.flush(run))
                print(f"run={run} kill_s={kills[-1]:.1f} flush_s={flushes[-1]:.1f}", flush=True)
        finally:
            bench.close()
    print(
        f"kill_median_s={statistics.median(kills):.1f} "
        f"kill_bound_s={args.lease * 1.1 + DISPATCH_INTERVAL:g} "
        f"flush_median_s={statistics.median(flushes):.1f} "
        f"flush_bound_s={args.grace + DISPATCH_INTERVAL:g} "
        f"flush_before_bound_s={ENQUEUE_TIMEOUT}",
        flush=True,
    )


if __name__ == "__main__":
    main()
