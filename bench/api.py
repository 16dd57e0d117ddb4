"""API accept-path benchmark: ``POST /api/v1/deliveries/`` with distinct valid bodies, without and
with an ``Idempotency-Key``, against a bare Django view answering 202 under the same gunicorn and
middleware, in the same run.

    .venv/bin/python bench/api.py [--backend postgres|sqlite|both] [--duration 10]
                                  [--concurrency 8] [--workers 2] [--batch 100]

For each backend it makes a throwaway platform (bench/throwaway.py: PostgreSQL with Redis db 10
as broker, or a SQLite file with the ORM broker), starts gunicorn and no worker (the accept path
alone), loads the bare view, then the API twice, then ``POST /api/v1/deliveries/batch/``. It
prints accepted/s, p50 and p99 per load, each API load's ratio to the bare view and the batch's
deliveries/s against single POSTs, then checks that every accepted delivery was stored (exit 1
otherwise). Speed is reported, never asserted."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Load, http_request  # noqa: E402
from bench.throwaway import Platform  # noqa: E402
from tests.processes import free_port  # noqa: E402

BODY = {"event": "order.shipped", "carrier": "bench"}
COUNT_DELIVERIES = "from integrations.models import Delivery; print(Delivery.objects.count())"


def delivery_builder(port: int, path: str, raw_key: str, *, idempotent: bool):
    """A valid delivery each time (its own provider path), optionally with its own key."""
    numbers = itertools.count()

    def build() -> bytes:
        number = next(numbers)
        body = json.dumps(
            {
                "customer": "bench",
                "action": "http.request",
                "input": {"path": f"/orders/{uuid.uuid4().hex}-{number}", "body": BODY},
            }
        ).encode()
        headers = {"Authorization": f"Bearer {raw_key}"}
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return http_request(port, path, body, headers)

    return build


def batch_builder(port: int, raw_key: str, size: int):
    """A batch of ``size`` valid deliveries each time."""
    numbers = itertools.count()

    def build() -> bytes:
        items = [
            {
                "customer": "bench",
                "action": "http.request",
                "input": {"path": f"/orders/{uuid.uuid4().hex}-{next(numbers)}", "body": BODY},
            }
            for _ in range(size)
        ]
        headers = {"Authorization": f"Bearer {raw_key}"}
        body = json.dumps({"items": items}).encode()
        return http_request(port, "/api/v1/deliveries/batch/", body, headers)

    return build


def measure(backend: str, args) -> int:
    with tempfile.TemporaryDirectory(prefix="sy_bench_api_") as tmp:
        platform = Platform(
            backend,
            Path(tmp),
            name="api",
            redis_url=os.environ.get("BENCH_API_REDIS_URL", "redis://127.0.0.1:6379/10"),
            DJANGO_SETTINGS_MODULE="bare_settings",
            PYTHONPATH=os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
        )
        try:
            platform.setup()
            port = free_port()
            platform.stack.start_web(port, workers=args.workers)
            run = {"concurrency": args.concurrency, "duration": args.duration}
            key = platform.raw_key
            bare = Load(port, delivery_builder(port, "/bench/bare/", key, idempotent=False))
            bare = bare.run(**run)
            results = {
                label: Load(
                    port, delivery_builder(port, "/api/v1/deliveries/", key, idempotent=keyed)
                ).run(**run)
                for label, keyed in (("accept", False), ("accept+key", True))
            }
            batch = Load(port, batch_builder(port, key, args.batch), prepared=20).run(**run)
            stored = int(platform.stack.manage("shell", "-c", COUNT_DELIVERIES).split()[-1])
        finally:
            platform.close()
    accepted = sum(result["ok"] for result in results.values()) + batch["ok"] * args.batch
    print(
        f"backend={backend} gunicorn_workers={args.workers} concurrency={args.concurrency} "
        f"duration={args.duration:g}s"
    )
    print(Load.line("bare view (202)", bare))
    for label, result in results.items():
        ratio = result["per_second"] / bare["per_second"] if bare["per_second"] else 0.0
        print(f"{Load.line(label, result)}  ratio {ratio:.3f}")
    per_delivery = batch["per_second"] * args.batch
    single = results["accept"]["per_second"]
    print(
        f"{f'batch of {args.batch}':18} {per_delivery:8.1f} deliveries/s ({batch['per_second']:.1f}"
        f" requests/s)  p50 {batch['p50_ms']:6.1f} ms  p99 {batch['p99_ms']:6.1f} ms  errors "
        f"{batch['errors'] or 0}  {per_delivery / single if single else 0:.1f}x single POSTs"
    )
    print(f"accepted {accepted}  stored {stored}")
    return 0 if accepted == stored else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--batch", type=int, default=100, help="items per batch request")
    args = parser.parse_args(argv)
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    return max(measure(backend, args) for backend in backends)


if __name__ == "__main__":
    sys.exit(main())
