"""The claim's query plan does not depend on the table's statistics (PostgreSQL)."""

import json

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.deliveries.services.outbox import DELIVERIES
from integrations.models import Delivery
from integrations.outbox.outbox import _unindexed
from tests.integrations.deliveries.backlog import deliveries_bulk

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query plans are PostgreSQL's"
)


def _indexes(sql: str, params=()) -> set[str]:
    """The indexes PostgreSQL's plan for ``sql`` reads, table scans made a last resort."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found, nodes = set(), [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        found |= {node["Index Name"]} if "Index Name" in node else set()
        nodes += node.get("Plans", [])
    return found


def test_a_claim_reads_its_rows_by_primary_key(acme):
    deliveries_bulk(acme, 5000)
    waiting = Delivery.objects.filter(status=Delivery.Status.PENDING).order_by("pk")
    ids = list(waiting.values_list("pk", flat=True)[1000:1050])
    with CaptureQueriesContext(connection) as queries:
        DELIVERIES.claim(ids)
    [claim] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert _indexes(claim) == {"integrations_delivery_pkey"}
    assert Delivery.objects.filter(status=Delivery.Status.IN_FLIGHT).count() == 50


def test_the_claims_conditions_are_out_of_every_indexs_reach(acme):
    """Why the plan above cannot change with the statistics: the due index serves the claim's
    conditions written plainly (and, estimating few due rows with a backlog newer than the last
    ANALYZE, PostgreSQL chose it and read every waiting row per claim); written through
    ``_unindexed`` no index can serve them, so only the primary key is left."""
    deliveries_bulk(acme, 100)
    due = Q(status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now())
    plain = Delivery.objects.filter(due).order_by().values("pk").query.sql_with_params()
    hidden = Delivery.objects.filter(_unindexed(due)).order_by().values("pk")
    assert "delivery_due" in _indexes(*plain)
    assert "delivery_due" not in _indexes(*hidden.query.sql_with_params())
