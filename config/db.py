"""Database helpers shared by the apps' hot paths."""

from django.db import connection
from django.db.models import Model

__all__ = ("update_fields_many",)


def update_fields_many(objects: list[Model], field_names: list[str]) -> None:
    """Write ``field_names`` of each of ``objects`` (instances of one model) by primary key, in
    one ``executemany`` (pipelined on PostgreSQL), with values prepared by the fields as
    ``save()`` would. Django's ``bulk_update`` builds a CASE expression per field and row, which
    costs more CPU than the statement itself on a worker's hot path. Locking is the caller's."""
    if not objects:
        return
    meta = objects[0]._meta
    fields = [meta.get_field(name) for name in field_names]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    # Only model metadata (quoted) goes into the text; every value is a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields]
        + [obj.pk]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
