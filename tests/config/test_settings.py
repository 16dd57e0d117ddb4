import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Variables the tests below set themselves, so none is inherited from the caller's shell.
CONTROLLED = ("SECRET_KEY", "DEBUG", "DATABASE_PREPARED_STATEMENTS")


def _setup(env_overrides: dict, then: str = "") -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter with ``env_overrides``, then run ``then``."""
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env.update(env_overrides, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{then}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "secret_key",
    [None, "django-insecure-switchyard-development-only", "short"],
)
def test_production_refuses_weak_or_missing_secret_key(secret_key):
    overrides = {"DEBUG": "false"}
    if secret_key is not None:
        overrides["SECRET_KEY"] = secret_key
    result = _setup(overrides)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_real_secret_key():
    result = _setup({"DEBUG": "false", "SECRET_KEY": "k" * 50})
    assert result.returncode == 0, result.stderr


def test_bad_boolean_is_a_clear_error():
    result = _setup({"DEBUG": "maybe"})
    assert "DEBUG must be a boolean" in result.stderr


def test_sqlite_is_configured_for_concurrent_writers(settings):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite-specific")
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 5
    assert "journal_mode=WAL" in options["init_command"]


def test_postgresql_binds_values_on_the_server(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-specific")
    import psycopg

    with connection.cursor() as cursor:
        assert isinstance(cursor.cursor, psycopg.Cursor)
        assert not isinstance(cursor.cursor, psycopg.ClientCursor)
        # A value the server must type from the statement: sent apart, not quoted into it.
        cursor.execute("SELECT %s::int + 1", [41])
        assert cursor.fetchone() == (42,)


def test_postgresql_prepares_a_statement_run_repeatedly(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-specific")
    statement = "SELECT %s::int * 3"
    with connection.cursor() as cursor:
        for value in range(6):
            cursor.execute(statement, [value])
            assert cursor.fetchone() == (value * 3,)
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = %s",
            ["SELECT $1::int * 3"],
        )
        assert cursor.fetchone() == (1,)


@pytest.mark.parametrize(("raw", "threshold"), [(None, 5), ("false", None)])
def test_prepared_statements_can_be_turned_off_for_a_pooler(raw, threshold):
    env = {"DEBUG": "true", "DATABASE_URL": "postgres://switchyard@db.invalid:5432/switchyard"}
    if raw is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = raw
    result = _setup(
        env,
        then="import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']['OPTIONS']))",
    )
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout.strip().splitlines()[-1])
    assert options == {"server_side_binding": True, "prepare_threshold": threshold}


def test_a_sqlite_connection_outlives_its_request(tmp_path):
    """Opening the file and setting its pragmas per request cost more than the accept path's
    queries: a web process keeps its connection between requests, as with PostgreSQL."""
    script = (
        "from django.core.signals import request_finished, request_started\n"
        "from django.db import connection\n"
        "seen = []\n"
        "for _ in range(2):\n"
        "    request_started.send(sender=None)\n"
        "    connection.ensure_connection()\n"
        "    seen.append(connection.connection)\n"
        "    request_finished.send(sender=None)\n"
        "print(connection.vendor, seen[0] is seen[1])\n"
    )
    env = {"DEBUG": "true", "DATABASE_URL": "", "SWITCHYARD_VAR_DIR": str(tmp_path)}
    result = _setup(env, then=script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["sqlite", "True"]
