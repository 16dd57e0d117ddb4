"""Statements on hot paths that the ORM compiles once per process and shape, then runs with new
values: for a small lookup or a claim, compiling costs several times what the database does.

``build(**values)`` makes the queryset (``PreparedRead``) or the queryset and its changes
(``PreparedUpdate``). It is compiled with a stand-in of each value's type (no real id, name, key
or time is one), which shows where each value goes; each real value is then prepared as its
stand-in was:

- ints and strs reach the database as given on every backend;
- UUIDs and aware datetimes as their fields prepare them (a native UUID or its hex; the
  backend's datetime adaptation);
- a list or tuple of those stands for one value each (``pk__in``): one statement per length.

A value the query transforms (``icontains``, ``__date``) is not found among the parameters and is
refused when compiled, as are None (``IS NULL`` is another statement), bools and other types.
``literals`` name values written into the statement itself (a slice's LIMIT): one statement is
kept per value. Rows come back through the converters the ORM applies."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count

from django.db import transaction
from django.db.models import Model, QuerySet, sql
from django.db.models.query import get_related_populators

from config.db import default_connection

__all__ = ("PreparedRead", "PreparedUpdate")

_markers = count(2**62)
_MARKER_TIME = datetime(2999, 1, 1, tzinfo=UTC)


def _stand_in(name: str, value):
    """A unique value of ``value``'s type, or a list of them for a list."""
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"{name}: an empty list matches nothing; run no statement for it.")
        return [_stand_in(name, item) for item in value]
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name}: a prepared statement's values are not None or bools.")
    if isinstance(value, int):
        return next(_markers)
    if isinstance(value, str):
        return f"\x1f{name}:{next(_markers)}"
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=next(_markers))
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _MARKER_TIME + timedelta(microseconds=next(_markers) % 10**12)
    raise TypeError(f"{name}: ints, strs, UUIDs and aware datetimes (or lists of them) only.")


def _forms(db, marker) -> list[tuple[object, Callable]]:
    """How ``marker`` may appear among the compiled parameters, each with how to prepare a real
    value the same way."""
    if isinstance(marker, uuid.UUID):
        return [(marker, _as_given), (marker.hex, _uuid_hex)]
    if isinstance(marker, datetime):
        adapt = db.ops.adapt_datetimefield_value
        return [(marker, _as_given), (adapt(marker), adapt)]
    return [(marker, _as_given)]


def _as_given(value):
    return value


def _uuid_hex(value):
    return value.hex


def _shape(value) -> object:
    """What of a value changes the statement: a list's length and its items' types."""
    if isinstance(value, list | tuple):
        return tuple(type(item) for item in value)
    return type(value)


class _Prepared:
    def __init__(self, build: Callable, *, literals: tuple[str, ...] = ()):
        self._build = build
        self._literals = literals
        self._compiled: dict[tuple, tuple] = {}

    def sql(self, **values) -> tuple[str, list]:
        """The statement and its parameters, to nest in another (``insert_one``'s ``only_if``)."""
        compiled = self._compiled_for(default_connection(), values)
        return compiled[0], _params(compiled[1], values)

    def _compiled_for(self, db, values: dict) -> tuple:
        literals = {name: values.pop(name) for name in self._literals}
        shape = tuple(sorted((name, _shape(value)) for name, value in values.items()))
        key = (db.alias, shape, tuple(literals.values()))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(db, values, literals)
        return compiled

    def _compile(self, db, values: dict, literals: dict) -> tuple:
        markers = {name: _stand_in(name, value) for name, value in values.items()}
        compiler = self._compiler(db, self._build(**markers, **literals))
        statement, params = compiler.as_sql()
        places = {}
        for name, marker in markers.items():
            for index, item in enumerate(marker) if isinstance(marker, list) else [(None, marker)]:
                for form, prepare in _forms(db, item):
                    places[form] = (name, index, prepare, None)
        slots = [_place(places, param) for param in params]
        missing = set(markers) - {name for name, *_ in slots}
        if missing:
            raise ValueError(f"Values not passed to the database as given: {sorted(missing)}.")
        return statement, slots, compiler

    def _compiler(self, db, built):
        raise NotImplementedError


def _place(places: dict, param) -> tuple:
    """The value a compiled parameter stands for (name, list index, preparation), or the
    parameter itself when it is a constant of the statement."""
    try:
        return places.get(param) or (None, None, None, param)
    except TypeError:  # unhashable, so no stand-in
        return (None, None, None, param)


def _params(slots: list[tuple], values: dict) -> list:
    params = []
    for name, index, prepare, constant in slots:
        if name is None:
            params.append(constant)
        else:
            params.append(prepare(values[name] if index is None else values[name][index]))
    return params


class PreparedRead(_Prepared):
    """A read: ``build(**values)`` returns the queryset. ``objects()`` builds model instances as
    the ORM does, with those of ``select_related``; ``rows()`` returns the selected values."""

    def rows(self, **values) -> list[list]:
        return self._run(values)[1]

    def objects(self, **values) -> list[Model]:
        (model, init, populators), rows = self._run(values)
        if init is None:
            raise TypeError("objects() needs a query that selects whole rows of one model.")
        alias, start, end = default_connection().alias, *init[0]
        found = []
        for row in rows:
            obj = model.from_db(alias, init[1], row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            found.append(obj)
        return found

    def _compiler(self, db, queryset: QuerySet):
        return queryset.query.get_compiler(connection=db)

    def _compile(self, db, values: dict, literals: dict) -> tuple:
        statement, slots, compiler = super()._compile(db, values, literals)
        selected = compiler.select
        info = compiler.klass_info
        init = populators = None
        if info is not None and not compiler.annotation_col_map:
            start, end = info["select_fields"][0], info["select_fields"][-1] + 1
            init = ((start, end), [column.target.attname for column, _, _ in selected[start:end]])
            populators = get_related_populators(info, selected, db.alias)
        shape = (compiler.query.model, init, populators)
        return statement, slots, compiler.get_converters([c for c, _, _ in selected]), shape

    def _run(self, values: dict) -> tuple[tuple, list[list]]:
        db = default_connection()
        statement, slots, converters, shape = self._compiled_for(db, values)
        with db.cursor() as cursor:
            cursor.execute(statement, _params(slots, values))
            rows = cursor.fetchall()
        if converters:
            rows = [_converted(row, converters, db) for row in rows]
        return shape, rows


class PreparedUpdate(_Prepared):
    """An UPDATE: ``build(**values)`` returns ``(queryset, changes)``, what
    ``queryset.update(**changes)`` would run. ``run()`` returns the rows updated."""

    def run(self, **values) -> int:
        db = default_connection()
        statement, slots, _ = self._compiled_for(db, values)
        with transaction.mark_for_rollback_on_error(using=db.alias), db.cursor() as cursor:
            cursor.execute(statement, _params(slots, values))
            return cursor.rowcount

    def _compiler(self, db, built: tuple[QuerySet, dict]):
        queryset, changes = built
        query = queryset.query.chain(sql.UpdateQuery)
        query.add_update_values(changes)
        query.clear_select_clause()
        if query.related_updates:  # an inherited model's parent table: another statement
            raise TypeError("A prepared UPDATE writes one table.")
        return query.get_compiler(connection=db)


def _converted(row, converters: dict, db) -> list:
    row = list(row)
    for position, (functions, expression) in converters.items():
        value = row[position]
        for function in functions:
            value = function(value, expression, db)
        row[position] = value
    return row
