"""Admin lists over tables of millions of rows: no COUNT(*) of the whole table, an estimated
count of the filtered list on PostgreSQL.

Django's changelist counts twice per page: the filtered list (for the paginator) and the whole
table ("N of M selected"). ``show_full_result_count = False`` drops the second. The paginator
counts exactly up to ``EXACT_UP_TO`` rows (a bounded subquery: ``LIMIT`` caps its cost) and
beyond that on PostgreSQL takes the planner's estimate (``pg_class.reltuples`` for the whole
table, ``EXPLAIN`` otherwise), so a page costs the same at ten thousand rows and at ten
million. SQLite (the embedded default, small) always counts exactly."""

import json

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

__all__ = ("EXACT_UP_TO", "EstimatedCountPaginator", "LargeTableMixin", "estimated_count")

# Counting this many matching rows is cheap; beyond it the cost grows with the table, and an
# estimate is enough for page links.
EXACT_UP_TO = 1_000


def estimated_count(queryset: QuerySet) -> int:
    """The planner's idea of how many rows ``queryset`` has (PostgreSQL only)."""
    bare = queryset.order_by().values("pk")
    connection = connections[queryset.db]
    with connection.cursor() as cursor:
        if not bare.query.where:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
            if row and row[0] >= 0:
                return int(row[0])
        sql, params = bare.query.sql_with_params()
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Exact up to ``EXACT_UP_TO`` rows; above that an estimate on PostgreSQL."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        bare = queryset.order_by().values("pk")
        if connections[queryset.db].vendor != "postgresql":
            return bare.count()
        exact = bare[: EXACT_UP_TO + 1].count()
        if exact <= EXACT_UP_TO:
            return exact
        return max(estimated_count(queryset), exact)


class LargeTableMixin:
    """For the admin lists of the log tables (deliveries, dead letters, inbound events)."""

    show_full_result_count = False
    paginator = EstimatedCountPaginator
