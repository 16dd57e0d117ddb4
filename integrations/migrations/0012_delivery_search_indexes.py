"""Indexes for the delivery log's search (PostgreSQL only; see
``integrations/deliveries/admin_search.py``), on the expressions its query compiles to.

- errors: a trigram index of ``UPPER(NULLIF(last_error, ''))`` (Django's ``icontains`` is
  ``UPPER(x::text) LIKE UPPER(%s)``). A success clears the error, so most rows hold NULL,
  one small entry. Not a partial index (``WHERE last_error <> ''``): the planner would take
  that condition as independent of the text it looks for, expect the share of failing rows
  squared, and fetch and sort every row of a common error instead of reading the newest along
  an index; this index has statistics of its own expression;
- inputs: the ids inside an input (cards, events, paths) are what operators paste, so every
  string and number of an input is indexed as a whole value (a few entries a row). A trigram
  index of whole inputs would answer any substring, but it takes dozens of entries a row, again
  at each of a delivery's updates (none is HOT: they change indexed columns).

GIN with ``fastupdate`` (the default) queues new entries in a pending list that autovacuum
merges. Built ``CONCURRENTLY``: a big table keeps taking writes meanwhile. SQLite has no index
of either kind; its search reads the table."""

from django.db import migrations

TABLE = "integrations_delivery"
INDEXES = {
    "delivery_error_trgm": "(UPPER(NULLIF(last_error, '')) gin_trgm_ops)",
    # Must stay the expression of ``admin_search.InputValues``.
    "delivery_input_values": (
        "(jsonb_path_query_array(input, "
        """'strict $.** ? (@.type() == "string" || @.type() == "number")') jsonb_path_ops)"""
    ),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {TABLE} USING gin {definition}"
        )
    # The planner's estimates need the new expressions' statistics before the next autovacuum.
    schema_editor.execute(f"ANALYZE {TABLE}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("integrations", "0011_delivery_trace_parent"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
