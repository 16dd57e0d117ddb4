"""The delivery table's index of ``customer_id`` alone goes: ``delivery_customer`` and
``delivery_customer_due`` begin with that column and serve its lookups (the PROTECT check
included), and every index is written again at each update of a delivery.

Django's own AlterField would drop and re-add the foreign key, which validates the whole table
under lock; only the index is dropped here (``CONCURRENTLY`` on PostgreSQL: the table keeps
taking writes), found by introspection under the name Django gave it."""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "integrations_delivery"
NAME_PREFIX = "integrations_delivery_customer_id_"


def _own_index(connection) -> str | None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return next(
        (
            name
            for name, info in constraints.items()
            if name.startswith(NAME_PREFIX)
            and info["index"]
            and info["columns"] == ["customer_id"]
            and not (info["unique"] or info["primary_key"] or info["foreign_key"])
        ),
        None,
    )


def drop(apps, schema_editor):
    name = _own_index(schema_editor.connection)
    if name is None:
        return
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {schema_editor.quote_name(name)}")


def create(apps, schema_editor):
    if _own_index(schema_editor.connection) is not None:
        return
    name = schema_editor._create_index_name(TABLE, ["customer_id"])
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}{schema_editor.quote_name(name)} ON {TABLE} (customer_id)"
    )


class Migration(migrations.Migration):
    # DROP INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("customers", "0002_api_key_scope"),
        ("integrations", "0013_delivery_customer_queued"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deliveries",
                        to="customers.customer",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop, create, elidable=False)],
        ),
    ]
