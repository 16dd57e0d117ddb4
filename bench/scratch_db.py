"""Running a Django script against a PostgreSQL database made for it and dropped afterwards
(BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres, is used only to
create and drop it), with production settings and the ORM broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ("ADMIN_URL", "run_in_scratch_database")

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def run_in_scratch_database(script: str, *args: str, name: str, debug: bool = False) -> str:
    """The stdout of ``python -c script args`` run in a fresh database ``name``. ``debug``
    turns DEBUG on (Django then records the SQL it sends)."""
    subprocess.run(["psql", ADMIN_URL, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    try:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "true" if debug else "false",
            "SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
            "SWITCHYARD_ENCRYPTION_KEYS": "c3dpdGNoeWFyZC10ZXN0LXZhdWx0LWtleS0zMmJ5dGU=",
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("REDIS_URL", None)
        return subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        subprocess.run(
            ["psql", ADMIN_URL, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
            check=False,
        )
