"""The inbound event log's search (webhooks/admin_search.py): the provider's event id exactly,
error text by substring, dotted types; on PostgreSQL the error index of migration 0010 answers."""

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection

from webhooks.admin_search import inbound_events_search
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db

URL = "/admin/webhooks/inboundevent/"


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


@pytest.fixture
def events(make_endpoint):
    endpoint = make_endpoint("stripe")

    def event(external_id, type_, **fields):
        return InboundEvent.objects.create(
            endpoint=endpoint,
            provider="stripe",
            external_id=external_id,
            type=type_,
            body=b"{}",
            attempt_limit=5,
            **fields,
        ).pk

    return (
        event("evt_1Abc", "stripe.charge.succeeded", status="processed"),
        event("evt_2Def", "stripe.charge.failed", status="dead", error="KeyError: 'amount'"),
    )


def _found(admin_client, term) -> set[int]:
    page = admin_client.get(URL, {"q": term})
    assert page.status_code == 200, term
    return {event.pk for event in page.context["cl"].result_list}


def test_finds_event_ids_errors_and_types(admin_client, events):
    ok, dead = events
    assert _found(admin_client, "evt_1Abc") == {ok}
    assert _found(admin_client, "evt_1abc") == set()  # the provider's id, exactly
    assert _found(admin_client, "keyerror") == {dead}
    assert _found(admin_client, "charge.failed") == {dead}
    assert _found(admin_client, "stripe.charge") == {ok, dead}
    assert _found(admin_client, "charge") == set()  # a type is searched by its dotted name
    assert _found(admin_client, "Ke") == set()


def test_postgres_error_search_uses_its_index(events):
    if connection.vendor != "postgresql":
        pytest.skip("the error index is PostgreSQL's (webhooks migration 0010)")
    sql, params = (
        inbound_events_search(InboundEvent.objects.all(), "evt_2Def amount")
        .order_by()
        .values("pk")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        # A test table is small: without this the planner rightly prefers reading it.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert re.search("Scan (on|using) (inbound_event_error_trgm|inbound_event_unique_ext)", plan)
    assert "Seq Scan" not in plan, plan
