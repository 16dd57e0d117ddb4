"""Database helpers shared by the apps' hot paths."""

from django.db import connection
from django.db.models import Model, signals

__all__ = ("insert_one", "update_fields_many")

# (model label, database alias) -> (INSERT statement, its fields), built on first use.
_insert_statements: dict[tuple[str, str], tuple[str, list]] = {}


def insert_one(obj: Model) -> None:
    """INSERT a new row as ``obj.save(force_insert=True)`` would, from a statement built once per
    process: compiling the INSERT of a wide model costs the ORM more CPU than a receiver's other
    work. Every value still goes through its field's ``pre_save`` and ``get_db_prep_save``, so
    the row is the one the ORM writes; when a save signal is connected to the model, the ORM
    does the save so its listeners run."""
    model, meta = type(obj), obj._meta
    if signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model):
        obj.save(force_insert=True)
        return
    returning = connection.features.can_return_columns_from_insert
    statement = _insert_statements.get((meta.label, connection.alias))
    if statement is None:
        quote = connection.ops.quote_name
        fields = [f for f in meta.concrete_fields if f is not meta.pk]
        columns = ", ".join(quote(f.column) for f in fields)
        values = ", ".join(["%s"] * len(fields))
        # Only model metadata (quoted) goes into the text; every value is a parameter.
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({values})"  # noqa: S608
        if returning:
            sql += f" RETURNING {quote(meta.pk.column)}"
        statement = _insert_statements[(meta.label, connection.alias)] = (sql, fields)
    sql, fields = statement
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            obj.pk = cursor.fetchone()[0]
        else:
            obj.pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    obj._state.adding, obj._state.db = False, connection.alias


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
