"""The claim's query plan does not depend on the table's statistics (PostgreSQL)."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.deliveries.services.outbox import DELIVERIES
from integrations.models import Delivery

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query plans are PostgreSQL's"
)


def _scans(plan: dict) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Index Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def test_a_claim_reads_its_rows_by_primary_key_under_a_backlog_newer_than_the_statistics(acme):
    """10,000 due deliveries the planner has no statistics for (as after a burst): the claim of
    50 of them still reads 50 rows by primary key, not every waiting row by the due index."""
    Delivery.objects.bulk_create(
        Delivery(
            customer=acme,
            action="trello.move_card",
            provider_key="trello",
            operation="move_card",
            input={"card_id": "c", "list_id": "l"},
            attempt_limit=3,
            next_attempt_at=timezone.now(),
        )
        for _ in range(10_000)
    )
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True)[1000:1050])
    with CaptureQueriesContext(connection) as queries:
        DELIVERIES.claim(ids)
    [claim] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {claim}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    indexes = {index for _, index in _scans(plan[0]["Plan"]) if index}
    assert indexes == {"integrations_delivery_pkey"}, _scans(plan[0]["Plan"])
    assert Delivery.objects.filter(status=Delivery.Status.IN_FLIGHT).count() == 50
