"""Retention benchmark: the purge of expired deliveries and their attempts (the dispatcher's
``purge_*`` steps, customers/lifecycle/retention.py) on a big table, while the API takes
deliveries.

    .venv/bin/python bench/retention.py [--backend postgres|sqlite] [--scale 1.0]
                                        [--concurrency 2] [--workers 2] [--baseline 5]

It makes a throwaway platform (bench/throwaway.py: PostgreSQL with Redis db 11 as broker, or a
SQLite file), seeds ``--scale`` times 1,000,000 deliveries with 5 attempts each straight in the
database (INSERT … SELECT over generate_series, or a recursive CTE on SQLite): 90 % succeeded
40 days ago and 5 % dead 100 days ago (both past the default retention), 5 % succeeded
yesterday (kept). Web runs under gunicorn, no worker. ``--baseline`` seconds of
``POST /api/v1/deliveries/`` from ``--concurrency`` senders give the API's latency alone; then
the same load runs while every retention rule purges, in its batches, in another process.

It prints rows purged per second, the batches' longest and median transaction (the longest a
purge holds its locks), the API's p50/p99 without and during the purge and the ratio of the
p99s; it exits 1 unless exactly the expired rows went. Figures count only from a quiet
machine."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api import delivery_builder  # noqa: E402
from bench.load import Load  # noqa: E402
from bench.throwaway import Platform  # noqa: E402
from tests.processes import free_port  # noqa: E402

FULL = 1_000_000
ATTEMPTS = 5

# Runs in `manage.py shell`: rows made by the database itself, ids given so the attempts refer
# to them; shares: 90 % succeeded and 5 % dead, both expired, 5 % recent.
SEED = r"""
from django.db import connection
from customers.models import Customer
n, customer = %(n)d, Customer.objects.get(slug="bench").pk
body = "x" * 200
days = "(CASE WHEN g %%%% 20 = 0 THEN 1 WHEN g %%%% 20 = 1 THEN 100 ELSE 40 END)"
if connection.vendor == "postgresql":
    series = "generate_series(1, %%s) g"
    ago = f"now() - {days} * interval '1 day'"
    key, js = "md5(random()::text || g)::uuid", "::jsonb"
else:
    series = "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %%s) "
    series += "SELECT g FROM s)"
    ago = f"strftime('%%%%Y-%%%%m-%%%%d %%%%H:%%%%M:%%%%f', 'now', '-' || {days} || ' days')"
    key, js = "lower(hex(randomblob(16)))", ""
with connection.cursor() as c:
    c.execute(f'''INSERT INTO integrations_delivery (id, key, customer_id, action, provider_key,
        operation, input, request_fingerprint, status, manual_retry, last_error, dead_reason,
        attempts, attempt_limit, created_at, updated_at, finished_at)
        SELECT g, {key}, %%s, 'http.request', 'http', 'request', '{{"path": "/orders/1"}}'{js}, '',
        CASE WHEN g %%%% 20 = 1 THEN 'dead' ELSE 'succeeded' END, false, '', '', 5, 10,
        {ago}, {ago}, {ago} FROM {series}''', [customer, n])
    c.execute(f'''INSERT INTO integrations_deliveryattempt (delivery_id, number, trigger,
        started_at, duration_ms, outcome, error_class, error, request_method, request_url,
        request_headers, request_body, response_status, response_headers, response_body)
        SELECT g, a, 'auto', {ago}, 12, 'success', '', '', 'POST', 'https://example.com/o',
        '{{}}'{js}, %%s, 200, '{{}}'{js}, %%s FROM {series}, (SELECT 1 AS a UNION ALL SELECT 2
        UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) AS attempts''', [body, body, n])
    if connection.vendor == "postgresql":
        c.execute("SELECT setval(pg_get_serial_sequence('integrations_delivery', 'id'), %%s)", [n])
        c.execute("VACUUM ANALYZE integrations_delivery")
        c.execute("VACUUM ANALYZE integrations_deliveryattempt")
"""

# Runs in `manage.py shell` while the load runs: every rule, batch by batch, timed.
PURGE = r"""
import json, time
from customers.lifecycle import retention_purge, retention_rules
batches, totals = [], {}
started = time.monotonic()
for rule in retention_rules():
    for table, count in retention_purge(rule, on_batch=lambda s, c: batches.append(s)).items():
        totals[table] = totals.get(table, 0) + count
print(json.dumps({"seconds": time.monotonic() - started, "batches": batches, "totals": totals}))
"""


def manage_shell(platform: Platform, script: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=platform.stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"script failed:\n{err}")
    return out


def load_while(port: int, build, args, running: subprocess.Popen | None) -> dict:
    """Latencies of the API load: for ``args.baseline`` s, or in 1 s rounds until ``running``
    has exited."""
    latencies, started = [], time.monotonic()
    while True:
        load = Load(port, build)
        load.run(concurrency=args.concurrency, duration=1.0 if running else args.baseline)
        latencies += load.latencies
        if running is None or running.poll() is not None:
            break
    ordered = sorted(latencies) or [0.0]

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    elapsed = time.monotonic() - started
    return {"per_second": len(latencies) / elapsed, "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


def measure(args) -> int:
    n = max(20, int(FULL * args.scale))
    expired = n - n // 20  # g % 20 == 0 is the recent 5 %
    with tempfile.TemporaryDirectory(prefix="sy_bench_retention_") as tmp:
        platform = Platform(
            args.backend,
            Path(tmp),
            name="retention",
            redis_url=os.environ.get("BENCH_RETENTION_REDIS_URL", "redis://127.0.0.1:6379/11"),
        )
        try:
            platform.setup()
            started = time.monotonic()
            finished(manage_shell(platform, SEED % {"n": n}))
            seeded = time.monotonic() - started
            port = free_port()
            platform.stack.start_web(port, workers=args.workers)
            build = delivery_builder(
                port, "/api/v1/deliveries/", platform.raw_key, idempotent=False
            )
            alone = load_while(port, build, args, None)
            purge = manage_shell(platform, PURGE)
            during = load_while(port, build, args, purge)
            result = json.loads(finished(purge).strip().splitlines()[-1])
        finally:
            platform.close()
    totals, batches = result["totals"], sorted(result["batches"]) or [0.0]
    purged = sum(totals.values())
    print(f"backend={args.backend} deliveries={n} attempts={n * ATTEMPTS} seeded_s={seeded:.1f}")
    print(
        f"purged {purged} rows in {result['seconds']:.1f} s: {purged / result['seconds']:.0f} "
        f"rows/s  batches {len(result['batches'])}  longest_lock_ms {batches[-1] * 1000:.1f}  "
        f"median_lock_ms {batches[len(batches) // 2] * 1000:.1f}"
    )
    for label, figures in (("api alone", alone), ("api during purge", during)):
        print(
            f"{label:17} {figures['per_second']:7.1f} accepted/s  p50 {figures['p50_ms']:6.1f} ms"
            f"  p99 {figures['p99_ms']:6.1f} ms"
        )
    ratio = during["p99_ms"] / alone["p99_ms"] if alone["p99_ms"] else 0.0
    print(f"api p99 ratio during/alone {ratio:.2f}")
    wanted = {"integrations_delivery": expired, "integrations_deliveryattempt": expired * ATTEMPTS}
    print(f"expected {wanted}  purged {totals}")
    return 0 if totals == wanted else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--scale", type=float, default=1.0, help="share of 1 M deliveries")
    parser.add_argument("--concurrency", type=int, default=2, help="API senders")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of load alone")
    return measure(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
