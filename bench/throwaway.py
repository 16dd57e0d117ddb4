"""A throwaway Switchyard platform for a benchmark: its own database (a SQLite file, or a
PostgreSQL database with a Redis db as broker and limiter store, both emptied afterwards),
production settings, a fake provider server and one customer whose generic HTTP integration
points at it."""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.processes import ProcessStack, free_port  # noqa: E402

__all__ = ("TOKEN", "Platform")

TOKEN = "b" * 64

# The generic HTTP provider: the engine's own cost, with no provider-wide limit in the way.
SEED = """
from credentials.services import credential_create
from customers.models import Customer, Region
from customers.services import api_key_create
from integrations.services import integration_create
region = Region.objects.create(code="eu", name="EU")
customer = Customer.objects.create(slug="bench", name="Bench", region=region)
credential_create(provider="http", purpose="api", customer=customer, fields={"token": %(token)r})
integration_create(customer=customer, provider_key="http", config={
    "base_url": %(base_url)r, "rate_limit": {"rate": 1000000, "per_seconds": 1}})
print(api_key_create(name="bench")[1])
"""


class Platform:
    """``name`` keeps concurrent benches' databases apart; ``redis_url`` is the Redis db this
    bench owns (flushed before and after); ``env`` adds settings."""

    def __init__(self, backend: str, workdir: Path, *, name: str, redis_url: str, **env):
        self.backend = backend
        env = {
            # Production settings: DEBUG would also record every SQL query in each process.
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SWITCHYARD_VAR_DIR": str(workdir),
            "SWITCHYARD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(
                secrets.token_bytes(32)
            ).decode(),
            # The fake provider server, a development tool off by default with DEBUG off.
            "SWITCHYARD_DEV_TOOLS": "true",
            # The fake provider listens on loopback, which egress refuses unless allowed.
            "SWITCHYARD_EGRESS_ALLOW": "127.0.0.1",
            # A bench posts as fast as it can with one key for one customer.
            "SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_KEY": "0",
            "SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_CUSTOMER": "0",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            **env,
        }
        self.database = self.admin_url = self.redis_url = None
        if backend == "postgres":
            import psycopg

            self.admin_url = os.environ.get(
                "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
            )
            self.redis_url = redis_url
            self.database = f"sy_bench_{name}_{os.getpid()}"
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.database}"')
            env["DATABASE_URL"] = self.admin_url.rsplit("/", 1)[0] + f"/{self.database}"
            env["REDIS_URL"] = self.redis_url
            self.flush_redis()
            self.stack = ProcessStack(workdir, env)
        else:
            self.stack = ProcessStack.sqlite(workdir, **env)
        self.database_url = self.stack.env["DATABASE_URL"]

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()  # the bench's own db only

    def close(self) -> None:
        self.stack.stop()
        if self.database:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.flush_redis()

    def setup(self) -> None:
        """Migrate, start the fake provider server, seed the customer; ``raw_key`` is the
        seeded API key."""
        self.stack.manage("migrate", "--verbosity", "0")
        port = free_port()
        fakeprovider = [sys.executable, "manage.py", "fakeprovider", "--port", str(port)]
        self.stack.start("fakeprovider", fakeprovider)
        self.fake_url = f"http://127.0.0.1:{port}"
        self.stack.wait_for(
            lambda: requests.get(f"{self.fake_url}/_journal", timeout=1).ok, what="fake server"
        )
        seed = SEED % {"token": TOKEN, "base_url": f"{self.fake_url}/http"}
        self.raw_key = self.stack.manage("shell", "-c", seed).strip().splitlines()[-1]
