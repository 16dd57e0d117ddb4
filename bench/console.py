"""Operator console at scale: the admin dashboard and each log list with its common filters,
timed over ``--scale`` times 1 M deliveries with 5 attempts each (goal: under 500 ms a page).

    .venv/bin/python bench/console.py [--backend postgres|sqlite] [--scale 1.0] [--repeat 3]

A throwaway platform (bench/throwaway.py) is seeded straight in the database (INSERT … SELECT
over generate_series, or a recursive CTE on SQLite): 20 customers, 4 providers, deliveries
spread over 7 days in id order as traffic writes them (5 % dead, 2 % pending, a quarter of
those held by an open trello breaker), each input with its own order path and card id, each
dead delivery with an error naming its request, one inbound event per 10 deliveries (5 % dead,
with an error). The pages include searches: ids, values inside inputs, error text. The
dashboard's rollup step then catches up (timed: what a first deploy on a big table costs) and
every page is fetched ``--repeat`` times through Django's test client as a logged-in
superuser; the median is printed. It exits 1 when a page does not answer 200. Figures from a
busy machine are indicative only."""

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

from bench.throwaway import Platform  # noqa: E402

FULL = 1_000_000
ATTEMPTS = 5
GOAL_MS = 500

# Runs in `manage.py shell`. Ids are given so attempts and events refer to their rows.
SEED = r"""
from django.db import connection
from customers.models import Customer, Region
from customers.services import api_key_create
from integrations.models import CircuitBreaker
from webhooks.models import WebhookEndpoint
from django.utils import timezone
n = %(n)d
region = Region.objects.get(code="eu")
first = min(Customer.objects.create(slug=f"c{i:02}", name=f"C{i}", region=region).pk
            for i in range(20))
endpoint = WebhookEndpoint.objects.create(customer_id=first, provider="stripe").pk
api_key_create(name="bench", scope="admin")  # the search probes idempotency keys per API key
pg = connection.vendor == "postgresql"
if pg:
    series, key, js = "generate_series(1, %%s) g", "md5(random()::text || g)::uuid", "::jsonb"
    ago = "now() - ((%%s - g)::bigint * 10080 / %%s) * interval '1 minute'" %% (n, n)
    later = "now() + interval '5 minutes'"
    plus = "(" + ago + ") + a * interval '1 second'"
    empty = "'\\x'::bytea"
else:
    series = "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %%s) "
    series += "SELECT g FROM s)"
    fmt = "'%%%%Y-%%%%m-%%%%d %%%%H:%%%%M:%%%%f'"
    back = f"'-' || (({n} - g) * 10080 / {n}) || ' minutes'"
    ago = f"strftime({fmt}, 'now', {back})"
    later = f"strftime({fmt}, 'now', '+5 minutes')"
    plus = f"strftime({fmt}, 'now', {back}, '+' || a || ' seconds')"
    key, js, empty = "lower(hex(randomblob(16)))", "", "X''"
provider = ("(CASE g %%%% 4 WHEN 0 THEN 'http' WHEN 1 THEN 'trello' WHEN 2 THEN 'stripe' "
            "ELSE 'shopify' END)")
status = ("(CASE WHEN g %%%% 20 = 1 THEN 'dead' WHEN g %%%% 50 = 2 THEN 'pending' "
          "ELSE 'succeeded' END)")
held = "'Deferred: the circuit breaker of trello/eu is open (HTTP 502)'"
failed = "'HTTP 502: upstream timed out (request req_' || g || ')'"
with connection.cursor() as c:
    c.execute(f'''INSERT INTO integrations_delivery (id, key, customer_id, action, provider_key,
        operation, input, request_fingerprint, status, manual_retry, last_error, dead_reason,
        attempts, attempt_limit, next_attempt_at, created_at, updated_at, finished_at)
        SELECT g, {key}, %%s + g %%%% 20, 'http.request', {provider}, 'request',
        ('{{"path": "/orders/' || g || '", "card_id": "crd_' || (g * 37 %%%% 999983) || '"}}'){js},
        '', {status}, false,
        CASE WHEN g %%%% 200 = 2 THEN {held} WHEN g %%%% 20 = 1 THEN {failed} ELSE '' END,
        CASE WHEN g %%%% 20 = 1 THEN 'attempts_exhausted' ELSE '' END, 5, 10,
        CASE WHEN g %%%% 50 = 2 THEN {later} END, {ago}, {ago},
        CASE WHEN g %%%% 50 = 2 THEN NULL ELSE {ago} END FROM {series}''', [first, n])
    c.execute(f'''INSERT INTO integrations_deliveryattempt (delivery_id, number, trigger,
        started_at, duration_ms, outcome, error_class, error, request_method, request_url,
        request_headers, request_body, response_status, response_headers, response_body)
        SELECT g, a, 'auto', {plus}, (g * 7 + a * 131) %%%% 3000,
        CASE WHEN a = 5 AND g %%%% 20 <> 1 THEN 'success' ELSE 'retryable' END, '', '', 'POST',
        'https://example.com/o', '{{}}'{js}, '', 200, '{{}}'{js}, '' FROM {series},
        (SELECT 1 AS a UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
         UNION ALL SELECT 5) AS attempts''', [n])
    c.execute(f'''INSERT INTO webhooks_inboundevent (id, key, endpoint_id, provider, external_id,
        type, status, body, headers, error, received_at, attempts, attempt_limit)
        SELECT g, {key}, %%s, 'stripe', 'evt_' || g, 'stripe.charge',
        CASE WHEN g %%%% 20 = 1 THEN 'dead' ELSE 'processed' END, {empty}, '{{}}'{js},
        CASE WHEN g %%%% 20 = 1 THEN 'KeyError: amount (evt_' || g || ')' ELSE '' END,
        {ago}, 1, 5 FROM {series}''', [endpoint, max(1, n // 10)])
    if pg:
        for table in ("integrations_delivery", "webhooks_inboundevent"):
            c.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %%s)", [n])
        for table in ("integrations_delivery", "integrations_deliveryattempt",
                      "webhooks_inboundevent"):
            c.execute(f"VACUUM ANALYZE {table}")
now = timezone.now()
CircuitBreaker.objects.create(provider_key="trello", region="eu", state="open",
    first_opened_at=now, opened_at=now, open_until=now + timezone.timedelta(minutes=5))
"""

# Runs in `manage.py shell`: the rollup step until it has caught up, then every page, timed.
MEASURE = r"""
import json, statistics, time
from urllib.parse import quote
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from customers.models import Customer
from integrations.dashboard.rollups import delivery_rollups_advance
from integrations.models import CircuitBreaker
started, rolled = time.monotonic(), 0
while True:
    done = delivery_rollups_advance()
    rolled += done
    if not done and rolled:
        break
rollup_s = time.monotonic() - started
user = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
client = Client()
client.force_login(user)
customer = Customer.objects.get(slug="c03").pk
breaker = CircuitBreaker.objects.get().pk
day = (timezone.now() - timezone.timedelta(days=1)).strftime("%%Y-%%m-%%d")
D, L, I = "/admin/integrations/delivery/", "/admin/integrations/deadletter/", "/admin/webhooks/"
pages = [
    "/admin/?window=1h", "/admin/?window=24h", "/admin/?window=7d",
    D, D + "?status__exact=pending", D + "?status__exact=dead", D + "?provider_key=trello",
    D + f"?customer__id__exact={customer}", D + f"?held_by={breaker}",
    D + f"?created_at__gte={day}", D + "?dead_reason__exact=attempts_exhausted", D + "?p=3",
    L, L + "?provider_key=stripe", L + f"?customer__id__exact={customer}",
    I + "inboundevent/", I + "inboundevent/?status__exact=dead",
    I + "inboundevent/?provider=stripe", I + "deadinboundevent/",
]
# Searches: an id, a card id and a path inside inputs, a rare and a common error text, a
# customer, nothing at all (the worst case of a scan), and the same on the other logs.
pages += [D + "?q=" + quote(term) for term in (
    "12345", "crd_777777", "/orders/4242", "req_4242", '"timed out"', "c07",
    "nothing-matches-this")]
pages += [L + "?q=" + quote("timed out"), L + "?q=nothing-matches-this"]
pages += [I + "inboundevent/?q=" + quote(term) for term in (
    "evt_4242", "amount", "stripe.charge", "nothing-matches-this")]
results = []
for page in pages:
    times, status = [], None
    for _ in range(%(repeat)d):
        t = time.monotonic()
        response = client.get(page, HTTP_HOST="127.0.0.1", secure=True)
        times.append((time.monotonic() - t) * 1000)
        status = response.status_code
    results.append({"page": page, "status": status, "ms": statistics.median(times)})
print(json.dumps({"rolled": rolled, "rollup_s": rollup_s, "pages": results}))
"""


def shell(platform: Platform, script: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=platform.stack.env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"script failed:\n{done.stderr}")
    return done.stdout


def measure(args) -> int:
    n = max(40, int(FULL * args.scale))
    with tempfile.TemporaryDirectory(prefix="sy_bench_console_") as tmp:
        platform = Platform(
            args.backend,
            Path(tmp),
            name="console",
            redis_url=os.environ.get("BENCH_CONSOLE_REDIS_URL", "redis://127.0.0.1:6379/12"),
        )
        try:
            platform.setup()
            # Production settings: pages name hashed static files, from the manifest.
            platform.stack.manage("collectstatic", "--noinput", "--verbosity", "0")
            started = time.monotonic()
            shell(platform, SEED % {"n": n})
            seeded = time.monotonic() - started
            out = shell(platform, MEASURE % {"repeat": args.repeat})
        finally:
            platform.close()
    result = json.loads(out.strip().splitlines()[-1])
    print(f"backend={args.backend} deliveries={n} attempts={n * ATTEMPTS} seeded_s={seeded:.1f}")
    rate = result["rolled"] / result["rollup_s"] if result["rollup_s"] else 0
    print(
        f"rollup caught up: {result['rolled']} attempts in {result['rollup_s']:.1f} s "
        f"({rate:.0f}/s)"
    )
    failed = 0
    for page in result["pages"]:
        slow = " SLOW" if page["ms"] > GOAL_MS else ""
        print(f"{page['ms']:8.1f} ms  status {page['status']}  {page['page']}{slow}")
        failed += page["status"] != 200
    return 1 if failed or result["rolled"] != n * ATTEMPTS else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--scale", type=float, default=1.0, help="share of 1 M deliveries")
    parser.add_argument("--repeat", type=int, default=3, help="fetches per page (median)")
    return measure(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
