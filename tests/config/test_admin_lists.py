"""The paginator of the big admin lists: exact on SQLite and for small results, the planner's
estimate above EXACT_UP_TO rows on PostgreSQL, and never a full COUNT(*) of the table."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config import admin_lists
from config.admin_lists import EstimatedCountPaginator, estimated_count
from integrations.models import Delivery
from tests.integrations.deliveries.backlog import deliveries_bulk

pytestmark = pytest.mark.django_db


def test_small_results_are_counted_exactly(acme):
    deliveries_bulk(acme, 7)
    deliveries_bulk(acme, 3, status="dead")
    assert EstimatedCountPaginator(Delivery.objects.order_by("pk"), 100).count == 10
    assert EstimatedCountPaginator(Delivery.objects.filter(status="dead"), 100).count == 3


def test_above_the_cap_postgres_estimates_without_counting_the_table(acme, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's; SQLite always counts exactly")
    monkeypatch.setattr(admin_lists, "EXACT_UP_TO", 20)
    deliveries_bulk(acme, 60)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE integrations_delivery")
    with CaptureQueriesContext(connection) as queries:
        count = EstimatedCountPaginator(Delivery.objects.filter(status="pending"), 10).count
    assert count >= 21  # at least what the bounded count saw
    assert any("EXPLAIN" in q["sql"] for q in queries)
    assert all("LIMIT" in q["sql"] for q in queries if "COUNT(" in q["sql"])
    assert estimated_count(Delivery.objects.all()) >= 0


def test_the_delivery_list_does_not_count_the_whole_table(admin_client, acme):
    deliveries_bulk(acme, 5)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/integrations/delivery/?status__exact=pending")
    assert response.status_code == 200 and response.context["cl"].result_count == 5
    counts = [
        q["sql"] for q in queries if "COUNT(" in q["sql"] and "integrations_delivery" in q["sql"]
    ]
    assert counts and all("WHERE" in sql for sql in counts), counts
