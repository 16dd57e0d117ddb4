"""The query plans of the outbox as its tables grow: no step may read the backlog.

    .venv/bin/python bench/outbox_plans.py [--sizes 50000,1000000]

For each size it makes a throwaway PostgreSQL database (BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres, used only to create and drop it), migrates it, and
writes that many due deliveries (99 % for one customer, as a burst leaves them) and as many
received inbound events, plus as many finished ones of each (the history a table keeps). Then,
for each outbox (deliveries, inbound events), it runs the real steps inside a transaction that
is rolled back, captures their SQL, and prints EXPLAIN ANALYZE of each statement: the relay
pass (owners waiting, the pick, the queued count), the claim of a batch, the settle of a group,
lease recovery with expired leases present, and a reopen (retry / replay). Per statement:
execution time, rows read by its scans, and whether it reads a whole table (a ``Seq Scan`` on
a table of that size): the last must never happen, and the times must not grow with the size."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch_db import run_in_scratch_database  # noqa: E402

MEASURE = r"""
import re, sys
import django
django.setup()
from datetime import timedelta
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from config.db import update_fields_many
from credentials.services import credential_create
from customers.models import Customer, Region
from integrations.deliveries.services.outbox import DELIVERIES
from integrations.deliveries.services.settle import SETTLED_FIELDS
from integrations.models import Delivery
from integrations.outbox import relay_due
from webhooks.models import InboundEvent, WebhookEndpoint
from webhooks.services import INBOUND
from webhooks.services import processing as inbound_processing

n = int(sys.argv[1])
call_command("migrate", verbosity=0)
region = Region.objects.create(code="eu", name="EU")
customers = [Customer.objects.create(slug=f"c{i}", name="c", region=region) for i in range(3)]
signing = credential_create(
    provider="standard_webhooks", purpose="webhook_signing", customer=customers[0],
    fields={"secret": "whsec_" + "A" * 32},
)
endpoint = WebhookEndpoint.objects.create(
    customer=customers[0], provider="standard_webhooks", credential=signing
)
now = timezone.now()
first = Delivery.objects.create(
    customer=customers[0], action="http.request", provider_key="http", operation="request",
    input={}, request_fingerprint="x", attempt_limit=10, next_attempt_at=now,
)
event = InboundEvent.objects.create(
    endpoint=endpoint, provider="standard_webhooks", external_id="e1", body=b"{}",
    attempt_limit=10, next_attempt_at=now,
)


def copy(table, row_id, unique, count, status=None):
    # Copies of one row made by the database itself: a million rows in seconds.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} LIMIT 0")
        columns = [c.name for c in cursor.description if c.name != "id"]
        values = [unique.get(c, f"r.{c}") for c in columns]
        if status:
            values[columns.index("status")] = f"'{status}'"
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "
            f"FROM generate_series(2, {count}) g, (SELECT * FROM {table} WHERE id = {row_id}) r"
        )


owner = (
    "(SELECT id FROM customers_customer ORDER BY id LIMIT 1"
    " OFFSET (CASE WHEN g % 100 = 0 THEN g % 3 ELSE 0 END))"
)
copy("integrations_delivery", first.pk, {"key": "gen_random_uuid()", "customer_id": owner}, n)
copy("integrations_delivery", first.pk, {"key": "gen_random_uuid()"}, n, status="succeeded")
copy("webhooks_inboundevent", event.pk, {"key": "gen_random_uuid()", "external_id": "'e' || g"}, n)
copy(
    "webhooks_inboundevent", event.pk,
    {"key": "gen_random_uuid()", "external_id": "'p' || g"}, n, status="processed",
)
with connection.cursor() as cursor:
    cursor.execute("VACUUM ANALYZE")


def explain(step, statements):
    for sql in statements:
        if pipelined := re.match(r"(\d+) times: (UPDATE \S+)", sql):
            # update_fields_many: one statement per row, by primary key, sent as one pipeline.
            print(f"{step:28} pipelined {pipelined[2]} ... WHERE id = %s, {pipelined[1]} rows")
            continue
        if not re.match(r"\s*(SELECT|UPDATE|INSERT|DELETE|WITH)", sql, re.I):
            continue
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + sql)
                plan = [row[0] for row in cursor.fetchall()]
            transaction.set_rollback(True)
        ms = next(float(l.split()[2]) for l in plan if l.startswith("Execution Time"))
        full = [
            l.strip() for l in plan
            if "Seq Scan on" in l and ("delivery " in l or "inboundevent " in l)
        ]
        read = sum(
            int(m) for l in plan if "Scan" in l
            for m in re.findall(r"actual time=\S+ rows=(\d+)", l)
        )
        whole = "YES " + full[0] if full else "no"
        print(f"{step:28} {ms:8.2f} ms  scanned={read:<7} full_scan={whole}  {sql[:90]!r}")


def captured(run):
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            run()
        transaction.set_rollback(True)
    return [q["sql"] for q in queries.captured_queries]


for name, outbox, model in (("delivery", DELIVERIES, Delivery), ("inbound", INBOUND, InboundEvent)):
    waiting = model.objects.filter(status__in=outbox.waiting).order_by("next_attempt_at")
    ids = list(waiting.values_list("pk", flat=True)[:50])
    explain(f"{name}.relay", captured(lambda: relay_due(outbox)))
    explain(f"{name}.claim", captured(lambda: outbox.claim(ids)))

    def settle():
        token = outbox.claim(ids[:20])
        rows = list(outbox.held(ids[:20], token))
        for row in rows:
            row.status, row.lease_token, row.lease_until = outbox.waiting[0], None, None
        if model is Delivery:
            update_fields_many(rows, [*SETTLED_FIELDS, "next_attempt_at", "last_error"])
        else:
            inbound_processing._write(rows)
    explain(f"{name}.settle", captured(settle)[2:])  # after the claim and the load

    def recover():
        model.objects.filter(pk__in=ids[:10]).update(
            status=outbox.claimed, lease_until=timezone.now() - timedelta(seconds=1)
        )
        outbox.recover_expired()
    explain(f"{name}.recover_expired", captured(recover)[1:])
    dead = list(model.objects.exclude(status__in=outbox.waiting).values_list("pk", flat=True)[:20])
    explain(f"{name}.reopen", captured(lambda: outbox.reopen(
        model.objects.filter(pk__in=dead), statuses=[model.objects.get(pk=dead[0]).status],
        budgets=lambda chunk: [(10, chunk)],
    )))
"""


def measure(n: int) -> str:
    name = f"sy_outbox_plans_{os.getpid()}_{n}"
    return run_in_scratch_database(MEASURE, str(n), name=name, debug=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50000,1000000")
    args = parser.parse_args()
    for n in (int(size) for size in args.sizes.split(",")):
        print(f"== n={n} due rows and as many finished, per table", flush=True)
        print(measure(n), flush=True)


if __name__ == "__main__":
    main()
