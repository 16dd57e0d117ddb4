"""What one dispatcher relay pass costs as the backlog grows: the relay must stay flat.

    .venv/bin/python bench/relay_cost.py [--sizes 5000,50000,1000000] [--runs 5]

For each size it makes a throwaway PostgreSQL database (BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres, used only to create and drop it), migrates it,
writes that many due deliveries (99 % for one customer, the rest spread over two others, as a
burst leaves them), then times ``deliveries_relay_due`` (the median of ``--runs`` passes, each
after the rows the previous pass queued are made due again; the ORM broker, so queueing costs the
same at every size) and the query that finds the customers waiting. A pass queues at most
SWITCHYARD_RELAY_MAX_QUEUED rows, so the figure compared is the time per row it queued: it
prints each size's figures and that figure's ratio to the smallest size's."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch_db import run_in_scratch_database  # noqa: E402

MEASURE = """
import statistics, sys, time
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from customers.models import Customer, Region
from integrations.deliveries import services
from integrations.deliveries.services.outbox import DELIVERIES
from integrations.outbox import relay
from integrations.models import Delivery

n, runs = int(sys.argv[1]), int(sys.argv[2])
call_command("migrate", verbosity=0)
region = Region.objects.create(code="eu", name="EU")
customers = [Customer.objects.create(slug=f"c{i}", name="c", region=region) for i in range(3)]
now = timezone.now()
for start in range(0, n, 20000):
    Delivery.objects.bulk_create(
        Delivery(
            customer=customers[i % 3] if i % 100 == 0 else customers[0],
            action="http.request", provider_key="http", operation="request", input={},
            request_fingerprint="x", attempt_limit=10, next_attempt_at=now,
        )
        for i in range(start, min(n, start + 20000))
    )
with connection.cursor() as cursor:
    cursor.execute("VACUUM ANALYZE")
passes, waiting, relayed = [], [], []
for _ in range(runs):
    # Only the rows the last pass queued: touching every row would leave the table full of dead
    # row versions and measure that instead.
    Delivery.objects.filter(enqueued_until__isnull=False).update(enqueued_until=None)
    due = Delivery.objects.filter(status="pending", next_attempt_at__lte=timezone.now()).filter(
        Q(enqueued_until__isnull=True) | Q(enqueued_until__lt=timezone.now())
    )
    started = time.perf_counter()
    list(relay._owners_waiting(DELIVERIES, due))
    waiting.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    relayed.append(services.deliveries_relay_due())
    passes.append((time.perf_counter() - started) * 1000)
median = statistics.median
print(f"{median(relayed)} {median(passes):.1f} {median(waiting):.2f}")
"""


def measure(n: int, runs: int) -> tuple[float, float, float]:
    name = f"sy_relay_bench_{os.getpid()}_{n}"
    out = run_in_scratch_database(MEASURE, str(n), str(runs), name=name).split()
    return float(out[-3]), float(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,50000,1000000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    base = None
    for n in sizes:
        started = time.monotonic()
        relayed, pass_ms, waiting_ms = measure(n, args.runs)
        per_row = pass_ms / max(relayed, 1)
        base = base or per_row
        print(
            f"n={n} relayed={relayed:.0f} relay_pass_ms={pass_ms} ms_per_relayed={per_row:.3f} "
            f"customers_waiting_ms={waiting_ms} ratio_to_smallest={per_row / base:.2f} "
            f"(seeded and measured in {time.monotonic() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
