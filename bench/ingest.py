"""Ingest benchmark: signed Standard Webhooks at a fixed concurrency against the project under
gunicorn on PostgreSQL, compared with a bare Django view answering 202 in the same run.

    .venv/bin/python bench/ingest.py [--duration 10] [--concurrency 32] [--workers 2]

It creates a throwaway PostgreSQL database (dropped afterwards), migrates it, starts gunicorn,
a django-q2 worker and the dispatcher, loads the bare view and then the receiver, waits for the
events to be processed and prints accepted / persisted / processed counts. Speed is reported,
never asserted; the counts must agree (no event acknowledged and then lost)."""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Load, http_request  # noqa: E402
from bench.procfs import cpu_ms_each, cpu_seconds_by_role  # noqa: E402
from tests.processes import ProcessStack, free_port  # noqa: E402

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
FINISHED = ("processed", "ignored", "dead")

SEED = """
from credentials.services import credential_create
from customers.models import Customer, Region
from webhooks.services import endpoint_create
region = Region.objects.create(code="eu", name="EU")
customer = Customer.objects.create(slug="bench", name="Bench", region=region)
credential = credential_create(provider="standard_webhooks", purpose="webhook_signing",
                               customer=customer, fields={"secret": %r})
print(endpoint_create(customer=customer, provider="standard_webhooks", credential=credential).path)
"""


def webhook_builder(port: int, path: str, *, signed: bool):
    """Requests carrying a new ``webhook-id`` each; signed for the receiver, plain for the bare
    view (the same bytes on the wire otherwise)."""
    webhook = Webhook(SECRET)

    def build() -> bytes:
        msg_id = f"msg_{uuid.uuid4().hex}"
        now = datetime.now(tz=UTC)
        body = json.dumps(
            {"type": "bench.ping", "timestamp": now.isoformat(), "data": {"id": msg_id}}
        ).encode()
        headers = {}
        if signed:
            headers = {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": webhook.sign(msg_id, now, body.decode()),
            }
        return http_request(port, path, body, headers)

    return build


def counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT status, count(*) FROM webhooks_inboundevent GROUP BY status"
        ).fetchall()
    return dict(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="server")
    parser.add_argument("--redis-url", default="", help="django-q2 broker (default: ORM)")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    name = f"sy_bench_ingest_{os.getpid()}"
    admin_dsn = f"{args.pg}/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{args.pg}/{name}"
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / name
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        "DJANGO_SETTINGS_MODULE": "bare_settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SWITCHYARD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": dsn.replace("postgresql://", "postgres://"),
        "REDIS_URL": args.redis_url,
        "SWITCHYARD_VAR_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
    }
    stack = ProcessStack(workdir, env)
    try:
        stack.manage("migrate", "--noinput")
        path = stack.manage("shell", "-c", SEED % SECRET).strip().splitlines()[-1]
        port = free_port()
        stack.start_web(port, workers=args.workers)
        stack.start_worker()
        stack.start_dispatcher()

        run = {"concurrency": args.concurrency, "duration": args.duration}
        bare = Load(port, webhook_builder(port, "/bench/bare/", signed=False)).run(**run)
        roles = {role: stack.processes[role][0].pid for role in ("web", "worker", "dispatcher")}
        cpu_before = cpu_seconds_by_role(roles, name)
        ingest = Load(port, webhook_builder(port, path, signed=True)).run(**run)
        cpu_after = cpu_seconds_by_role(roles, name)
        # How far processing lagged when the load stopped: work left for after the window.
        load_ended = time.monotonic()
        at_end = counts(dsn)
        ratio = ingest["per_second"] / bare["per_second"] if bare["per_second"] else 0.0
        print(
            f"gunicorn workers={args.workers} concurrency={args.concurrency} "
            f"duration={args.duration:g}s database=postgresql broker="
            f"{'redis' if args.redis_url else 'orm'}"
        )
        print(Load.line("bare view (202)", bare))
        print(Load.line("webhook ingest", ingest))
        print(f"ratio ingest/bare {ratio:.2f}")
        # Where the machine's CPU went during the ingest load, per event accepted (the events
        # processed meanwhile included): the receiver, the cluster, the dispatcher, the database
        # and the load generator (this process).
        per_event = cpu_ms_each(cpu_before, cpu_after, ingest["ok"])
        print("cpu ms per event " + "  ".join(f"{k} {v:.2f}" for k, v in per_event.items()))

        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            by_status = counts(dsn)
            if sum(by_status.get(s, 0) for s in FINISHED) >= sum(by_status.values()):
                break
            time.sleep(0.5)
        by_status = counts(dsn)
        drained = time.monotonic() - load_ended
        backlog = sum(at_end.values()) - sum(at_end.get(s, 0) for s in FINISHED)
        print(f"unprocessed when the load stopped {backlog}  all processed {drained:.1f} s later")
        persisted = sum(by_status.values())
        processed = by_status.get("processed", 0) + by_status.get("ignored", 0)
        print(f"accepted {ingest['ok']}  persisted {persisted}  processed {processed}")
        return 0 if ingest["ok"] == persisted == processed else 1
    finally:
        stack.stop()
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
