"""Database helpers shared by the apps' hot paths."""

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections
from django.db.models import NOT_PROVIDED, Model, QuerySet, signals

__all__ = (
    "default_connection",
    "insert_many",
    "insert_one",
    "one_or_none",
    "update_fields_many",
)

# INSERT statements built on first use: insert_one's by (model label, database alias, columns
# left out, conditions, quiet_conflict); insert_many's by (model label, database alias, "many").
_insert_statements: dict[tuple, str] = {}


def default_connection():
    """The default database's wrapper itself: ``django.db.connection`` is a proxy that looks the
    connection up on every attribute, and preparing a row's values reads it a few dozen times."""
    return connections[DEFAULT_DB_ALIAS]


def _insert_statement(
    db, meta, fields: list, conditions: dict[str, str], *, quiet_conflict: bool, returning=True
) -> str:
    quote = db.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    values = ", ".join(
        f"CASE WHEN {conditions[f.name]} THEN %s END" if f.name in conditions else "%s"
        for f in fields
    )
    # Only model metadata (quoted) and the callers' conditions go into the text; every value
    # is a parameter.
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({values})"  # noqa: S608
    if returning and db.features.can_return_columns_from_insert:
        if quiet_conflict:
            sql += " ON CONFLICT DO NOTHING"
        held = [quote(meta.get_field(name).column) for name in sorted(conditions)]
        sql += " RETURNING " + ", ".join([quote(meta.pk.column), *held])
    return sql


def one_or_none(queryset: QuerySet) -> Model | None:
    """The row a lookup on a unique key finds, or None: ``first()`` without the ORDER BY it (or
    the model's default ordering) adds, which such a lookup does not need and which is a third
    of compiling a small query."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def insert_one(
    obj: Model, *, only_if: dict[str, tuple[str, list]] | None = None, quiet_conflict=False
) -> None:
    """INSERT a new row as ``obj.save(force_insert=True)`` would, from a statement built once per
    process, where the ORM compiles the INSERT of a wide model anew for every row. Every value
    still goes through its field's ``pre_save`` and ``get_db_prep_save``, so the row is the one
    the ORM writes; a column whose value is NULL is left out of the statement (it has no
    database default, so it is NULL all the same) unless its field has a ``db_default``. When a
    save signal is connected to the model, or a value is an expression, the ORM does the save.
    tests/webhooks/test_db_helpers.py pins this against ``objects.create`` on both databases.

    ``only_if`` maps a field name to a condition (SQL and its parameters, e.g. a
    ``PreparedRead.sql``, config/prepared.py): the field keeps the object's value only if the
    condition holds when the row is written, else it is NULL (and so set on ``obj``). The
    condition is decided in the INSERT itself where the database returns columns from it, in a
    SELECT before it elsewhere.

    ``quiet_conflict``: a row that a unique constraint refuses is skipped by the database (``ON
    CONFLICT DO NOTHING``, no error in the server's log) and IntegrityError raised all the same:
    for an insert that doubles as the lookup of a key a client may send again."""
    model, meta, db = type(obj), obj._meta, default_connection()
    only_if = {name: c for name, c in (only_if or {}).items() if getattr(obj, name) is not None}
    if signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model):
        _orm_insert(obj, only_if)
        return
    if not db.features.can_return_columns_from_insert:
        only_if = _decided_apart(obj, only_if)
    fields, params, left_out = [], [], []
    for field in meta.concrete_fields:
        if field is meta.pk:
            continue
        value = field.pre_save(obj, True)
        if hasattr(value, "resolve_expression"):
            # An expression (a db_default's DEFAULT, Value(), Now()) is compiled by the ORM only.
            _orm_insert(obj, only_if)
            return
        value = field.get_db_prep_save(value, db)
        if value is None and field.db_default is NOT_PROVIDED:
            left_out.append(field.column)
            continue
        fields.append(field)
        if only_if and field.name in only_if:
            params.extend([*only_if[field.name][1], value])
        else:
            params.append(value)
    conditions = tuple((name, only_if[name][0]) for name in sorted(only_if or ()))
    key = (meta.label, db.alias, tuple(left_out), conditions, quiet_conflict)
    sql = _insert_statements.get(key)
    if sql is None:
        sql = _insert_statements[key] = _insert_statement(
            db, meta, fields, dict(conditions), quiet_conflict=quiet_conflict
        )
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        if db.features.can_return_columns_from_insert:
            row = cursor.fetchone()
            if row is None:  # skipped by ON CONFLICT DO NOTHING
                raise IntegrityError(f"{meta.label}: a unique constraint refused the row.")
            obj.pk, *held = row  # then each conditioned column as stored
            for (name, _), kept in zip(conditions, held, strict=True):
                if kept is None:
                    setattr(obj, name, None)
        else:
            obj.pk = db.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    obj._state.adding, obj._state.db = False, db.alias


def _decided_apart(obj: Model, only_if: dict[str, tuple[str, list]]) -> dict:
    """Decides ``insert_one``'s conditions by a SELECT each, before the INSERT: none is left."""
    for name, (condition, params) in only_if.items():
        with default_connection().cursor() as cursor:
            cursor.execute(f"SELECT CASE WHEN {condition} THEN 1 ELSE 0 END", params)
            if not cursor.fetchone()[0]:
                setattr(obj, name, None)
    return {}


def _orm_insert(obj: Model, only_if: dict[str, tuple[str, list]]) -> None:
    _decided_apart(obj, only_if)
    obj.save(force_insert=True)


def insert_many(objects: list[Model]) -> None:
    """INSERT new rows of one model in one ``executemany`` (pipelined on PostgreSQL), each value
    prepared by its field as ``insert_one`` prepares it; primary keys are not read back. Django's
    ``bulk_create`` on PostgreSQL sends each column as one array, whose text form psycopg escapes
    in Python character by character: for long texts (attempt records) that costs more than the
    statement itself. A value that is an expression leaves the rows to ``bulk_create``."""
    if not objects:
        return
    db, meta = default_connection(), objects[0]._meta
    fields = [field for field in meta.concrete_fields if field is not meta.pk]
    rows = []
    for obj in objects:
        values = [field.pre_save(obj, True) for field in fields]
        if any(hasattr(value, "resolve_expression") for value in values):
            type(obj).objects.bulk_create(objects)
            return
        rows.append([f.get_db_prep_save(v, db) for f, v in zip(fields, values, strict=True)])
    key = (meta.label, db.alias, "many")
    sql = _insert_statements.get(key)
    if sql is None:
        sql = _insert_statements[key] = _insert_statement(
            db, meta, fields, {}, quiet_conflict=False, returning=False
        )
    with db.cursor() as cursor:
        cursor.executemany(sql, rows)


def update_fields_many(objects: list[Model], field_names: list[str]) -> None:
    """Write ``field_names`` of each of ``objects`` (instances of one model) by primary key, in
    one ``executemany`` (pipelined on PostgreSQL), with values prepared by the fields as
    ``save()`` would. Django's ``bulk_update`` builds a CASE expression per field and row, which
    costs more CPU than the statement itself on a worker's hot path. Locking is the caller's."""
    if not objects:
        return
    db, meta = default_connection(), objects[0]._meta
    fields = [meta.get_field(name) for name in field_names]
    quote = db.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    # Only model metadata (quoted) goes into the text; every value is a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), db) for field in fields] + [obj.pk]
        for obj in objects
    ]
    with db.cursor() as cursor:
        cursor.executemany(sql, rows)
