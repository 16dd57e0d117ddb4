"""Delivery benchmark: the engine against a plain loop posting the same N requests through one
pooled ``requests.Session`` to the same fake provider server, measured in the same run.

    .venv/bin/python bench/deliver.py [--n 5000 | --sizes 5000,50000]
                                      [--backend sqlite|postgres|both] [--workers 2] [--no-stream]
                                      [--offered 100]

For each backend it makes a throwaway database (a SQLite file in a temporary directory, or a
PostgreSQL database with Redis as broker and limiter store; both removed afterwards), migrates
it, seeds one customer whose generic HTTP integration points at a fake provider server of its
own (no provider-wide rate limit in the way), and measures three things:

1. baseline: N POSTs in a loop through one pooled session (``baseline_per_s``; run before and
   after the engine phase, the faster kept);
2. engine: N due deliveries already in the outbox, then ``qcluster`` (``--workers`` worker
   processes) and ``dispatch`` start; ``engine_per_s`` is N over first-to-last provider receipt,
   ``ratio`` is that over the baseline, ``worker_peak_rss_mb`` the qcluster process tree's peak;
3. stream (skipped by ``--no-stream``): N deliveries posted through the API (gunicorn, 4 client
   threads) once a worker has run its first task; ``p50_ms``/``p99_ms`` from acceptance
   (``created_at``) to the provider receiving it (the fake server's journal),
   ``api_accepts_per_s`` and ``end_to_end_per_s`` (first acceptance to last receipt),
   ``stream_ratio`` that over the baseline; ``stream_cpu_ms`` the CPU time a delivery cost the
   machine (``stream_cpu_ms_by_role``: gunicorn, cluster, dispatcher, fake provider, the
   database's backends on PostgreSQL, this process's posting threads), and
   ``stream_cpu_bound_ratio`` the ratio the machine's cores could carry at that cost (when it
   is close to ``stream_ratio``, the stream is bound by CPU, not by waiting); with
   ``--offered R``, 20 s more posted at R per second and ``offered_p50_ms`` /
   ``offered_p99_ms``, the latency at that rate.

Counts must agree in both phases (N succeeded, N received, N attempts) or it fails.

PostgreSQL and Redis are reached at BENCH_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432/postgres, used only to create and drop the database) and
BENCH_REDIS_URL (default redis://127.0.0.1:6379/8, flushed before and after)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procfs import PeakRss, cpu_ms_each, cpu_seconds_by_role  # noqa: E402
from bench.throwaway import TOKEN, Platform  # noqa: E402
from tests.processes import free_port  # noqa: E402

BODY = {"event": "order.shipped", "carrier": "bench"}
CLIENT_THREADS = 4


def backlog(n: int) -> str:
    """Shell code writing ``n`` due deliveries straight into the outbox."""
    return f"""
from django.utils import timezone
from integrations.models import Delivery, Integration
integration = Integration.objects.get()
Delivery.objects.bulk_create(
    (Delivery(customer_id=integration.customer_id, action="http.request", provider_key="http",
              operation="request", integration=integration, attempt_limit=10,
              input={{"method": "POST", "path": f"/orders/bench{{i:06d}}", "body": {BODY!r}}},
              next_attempt_at=timezone.now()) for i in range({n})),
    batch_size=1000,
)
"""


# Whether a delivery is still to finish: an index probe, polled twice a second, so that waiting
# takes next to nothing from the engine being measured (a count reads the whole table).
UNFINISHED_SQL = (
    "SELECT EXISTS (SELECT 1 FROM integrations_delivery WHERE status IN ('pending', 'in_flight'))"
)
POLL_SECONDS = 0.5
WORKER_SEEN_SQL = "SELECT count(*) FROM integrations_processheartbeat WHERE role = 'worker'"
RESULTS_SQL = "SELECT input, created_at, status, attempts FROM integrations_delivery"


def query(database_url: str, sql: str) -> list[tuple]:
    """Read the benchmark's database directly: a Django shell per poll would cost more CPU
    than the workers being measured."""
    if database_url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
        try:
            with conn:
                return conn.execute(sql).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def epoch(value) -> float:
    if isinstance(value, str):  # SQLite keeps UTC datetimes as text
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.timestamp()


def path(n: int) -> str:
    return f"/orders/bench{n:06d}"


def baseline(fake_url: str, n: int) -> float:
    """Requests per second of a plain loop: the same N calls, one pooled session."""
    with requests.Session() as session:
        started = time.perf_counter()
        for i in range(n):
            response = session.post(
                f"{fake_url}/http{path(i)}",
                headers={"Authorization": f"Bearer {TOKEN}"},
                json=BODY,
                timeout=10,
            )
            response.raise_for_status()
        return n / (time.perf_counter() - started)


def post_all(web_url: str, raw_key: str, n: int, rate: float | None = None) -> None:
    """POST ``n`` deliveries from CLIENT_THREADS threads: as fast as the API answers, or the
    i-th at ``i / rate`` seconds after the start (an offered rate, as callers spread in time)."""
    started = time.perf_counter()

    def post(indices):
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {raw_key}"
            for i in indices:
                if rate and (wait := started + i / rate - time.perf_counter()) > 0:
                    time.sleep(wait)
                body = {
                    "customer": "bench",
                    "action": "http.request",
                    "input": {"path": path(i), "body": BODY},
                }
                response = session.post(f"{web_url}/api/v1/deliveries/", json=body, timeout=30)
                if response.status_code != 202:
                    raise RuntimeError(f"API answered {response.status_code}: {response.text}")

    threads = [
        threading.Thread(target=post, args=(range(t, n, CLIENT_THREADS),))
        for t in range(CLIENT_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# The stream phase's processes whose CPU it reports, by role (bench/procfs.py): gunicorn,
# the cluster, the dispatcher, the fake provider; the database's backends and this process too.
ROLES = {"web": "web", "worker": "worker", "dispatcher": "dispatcher", "provider": "fakeprovider"}


class Bench(Platform):
    """One backend's run: throwaway database, processes, the three measurements."""

    def __init__(self, backend: str, n: int, workers: int, workdir: Path):
        super().__init__(
            backend,
            workdir,
            name="deliver",
            redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"),
            SWITCHYARD_WORKERS=str(workers),
            SWITCHYARD_DISPATCH_INTERVAL_SECONDS="0.05",
        )
        self.n = n

    def setup(self) -> None:
        super().setup()

    def reset(self) -> None:
        requests.post(f"{self.fake_url}/_reset", timeout=5)
        query(self.database_url, "DELETE FROM integrations_deliveryattempt")
        query(self.database_url, "DELETE FROM integrations_delivery")
        query(self.database_url, "DELETE FROM integrations_processheartbeat")

    def stop_engine(self) -> None:
        """Stop web, worker and dispatcher; the fake server keeps its journal."""
        for name in ("web", "worker", "dispatcher"):
            if name in self.stack.processes:
                self.stack.kill(name)  # all work is done; nothing to drain
                del self.stack.processes[name]

    def wait_finished(self) -> None:
        deadline = time.monotonic() + max(120, self.n / 10)
        while query(self.database_url, UNFINISHED_SQL)[0][0]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.n} deliveries not finished\n{self.stack.logs()}")
            time.sleep(POLL_SECONDS)

    def outcome(self) -> tuple[list, dict]:
        journal = requests.get(f"{self.fake_url}/_journal", timeout=120).json()["requests"]
        received = {}
        for entry in journal:
            received.setdefault(entry["path"].rsplit("/", 1)[-1], entry["at"])
        rows = []
        for data, created, status, attempts in query(self.database_url, RESULTS_SQL):
            data = json.loads(data) if isinstance(data, str) else data
            rows.append((data["path"].rsplit("/", 1)[-1], epoch(created), status, attempts))
        counts = {
            "succeeded": sum(status == "succeeded" for _, _, status, _ in rows),
            "received": len(journal),
            "attempts": sum(attempts for *_, attempts in rows),
        }
        if counts != {"succeeded": self.n, "received": self.n, "attempts": self.n}:
            raise AssertionError(f"{self.backend}: counts disagree: {counts}")
        return rows, received, counts["succeeded"]

    def streaming(self, rate: float | None = None) -> dict:
        """Deliveries posted through the API while the workers run: latency from acceptance;
        flat out, or at an offered ``rate`` per second."""
        self.reset()
        web_url = self.stack.start_web(free_port(), workers=2)
        worker = self.stack.start_worker()
        self.stack.start_dispatcher()
        # Latency is measured from a running cluster: its start-up (a second or two of Django
        # set-up and forks) would otherwise be every early delivery's wait.
        self.stack.wait_for(
            lambda: query(self.database_url, WORKER_SEEN_SQL)[0][0] > 0, what="a worker heartbeat"
        )
        rss = PeakRss(worker.pid)
        roles = {role: self.stack.processes[name][0].pid for role, name in ROLES.items()}
        cpu_before = cpu_seconds_by_role(roles, self.database)
        posting = time.perf_counter()
        post_all(web_url, self.raw_key, self.n, rate)
        posting = time.perf_counter() - posting
        self.wait_finished()
        cpu_after = cpu_seconds_by_role(roles, self.database)
        rss.stop()
        self.stop_engine()
        rows, received, succeeded = self.outcome()
        latencies = [received[key] - created for key, created, _, _ in rows]
        first_accepted = min(created for _, created, _, _ in rows)
        cpu_ms = cpu_ms_each(cpu_before, cpu_after, self.n)
        cpu_total = sum(cpu_ms.values())
        return {
            "stream_succeeded": succeeded,
            "stream_cpu_ms": round(cpu_total, 2),
            "stream_cpu_ms_by_role": ",".join(f"{k}:{v:.2f}" for k, v in cpu_ms.items()),
            # The rate this machine's cores could carry at that cost, were nothing idle.
            "stream_cpu_bound_per_s": round(len(os.sched_getaffinity(0)) * 1000 / cpu_total, 1),
            "api_accepts_per_s": round(self.n / posting, 1),
            "end_to_end_per_s": round(self.n / (max(received.values()) - first_accepted), 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        }

    def draining(self) -> dict:
        """The engine alone: N due deliveries already accepted, then the workers start."""
        self.reset()
        self.stack.manage("shell", "-c", backlog(self.n))
        worker = self.stack.start_worker()
        self.stack.start_dispatcher()
        rss = PeakRss(worker.pid)
        self.wait_finished()
        peak = rss.stop()
        self.stop_engine()
        _, received, succeeded = self.outcome()
        arrivals = sorted(received.values())
        return {
            "drain_succeeded": succeeded,
            "engine_per_s": round(self.n / (arrivals[-1] - arrivals[0]), 1),
            "worker_peak_rss_mb": round(peak / 2**20, 1),
        }


def run(
    backend: str,
    n: int,
    workers: int,
    workdir: Path,
    stream: bool = True,
    offered: float | None = None,
) -> dict:
    bench = Bench(backend, n, workers, workdir)
    try:
        bench.setup()
        before = baseline(bench.fake_url, n)
        engine = bench.draining()
        # Measured around the engine phase and the better one kept: a noisy neighbour slowing
        # one loop must not flatter the ratio.
        base_rate = max(before, baseline(bench.fake_url, n))
        result = {"backend": backend, "n": n, "baseline_per_s": round(base_rate, 1), **engine}
        result["ratio"] = round(result["engine_per_s"] / base_rate, 3)
        if stream:
            result |= bench.streaming()
            result["stream_ratio"] = round(result["end_to_end_per_s"] / base_rate, 3)
            bound = result["stream_cpu_bound_per_s"]
            result["stream_cpu_bound_ratio"] = round(bound / base_rate, 3)
        if stream and offered:
            # Latency at a rate callers might offer: 20 s of it (at most N deliveries).
            bench.n = max(1, min(n, int(offered * 20)))
            paced = bench.streaming(rate=offered)
            result |= {"offered_per_s": offered, "offered_n": bench.n}
            result |= {f"offered_{key}": paced[key] for key in ("p50_ms", "p99_ms")}
    finally:
        bench.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument(
        "--sizes",
        default="",
        help="Comma-separated backlog sizes (e.g. 5000,50000) run in turn instead of --n, so "
        "the engine's ratio at each size can be compared within one sitting.",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--offered",
        type=float,
        default=0,
        help="Also post at this rate per second (20 s of it) and print the latency at it.",
    )
    parser.add_argument(
        "--no-stream",
        action="store_true",
        help="Skip the API phase (latency); the engine phase alone, e.g. for memory at large N.",
    )
    args = parser.parse_args()
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()] or [args.n]
    for backend in backends:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="sy-bench-") as workdir:
                result = run(
                    backend,
                    n,
                    args.workers,
                    Path(workdir),
                    stream=not args.no_stream,
                    offered=args.offered or None,
                )
            print(" ".join(f"{key}={value}" for key, value in result.items()), flush=True)


if __name__ == "__main__":
    main()
