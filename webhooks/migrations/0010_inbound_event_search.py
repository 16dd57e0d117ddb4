"""The inbound event log's search (PostgreSQL only; see ``webhooks/admin_search.py``):

- a trigram index of ``UPPER(NULLIF(error, ''))``, the expression the search compiles to,
  over the events with an error only (``WHERE error > ''``, which the search states too): the
  receiver's INSERT of an event, which has none, writes no entry (ingest is this table's hot
  path; errors are rare, so the planner's estimate of them does not matter here). An update
  that leaves the error as it is stays HOT (the reason for this table's fillfactor, migration
  0003);
- statistics on ``UPPER(type)``: a search of a dotted type reads the newest events first when
  the type is common, which the planner only knows from these.

Built ``CONCURRENTLY``: a big table keeps taking events meanwhile."""

from django.db import migrations

TABLE = "webhooks_inboundevent"
INDEX = "inbound_event_error_trgm"
STATISTICS = "inbound_event_type_upper"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON {TABLE} "
        "USING gin (UPPER(NULLIF(error, '')) gin_trgm_ops) WHERE error > ''"
    )
    schema_editor.execute(
        f"CREATE STATISTICS IF NOT EXISTS {STATISTICS} ON (UPPER(type::text)) FROM {TABLE}"
    )
    schema_editor.execute(f"ANALYZE {TABLE}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("webhooks", "0009_event_sources"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
