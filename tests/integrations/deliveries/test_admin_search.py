"""The delivery log's search (integrations/deliveries/admin_search.py): what an operator pastes
finds the delivery on either database, and on PostgreSQL the query is answered by the indexes
of migration 0012 rather than by reading the table."""

import re

import pytest
from django.db import connection

from integrations.deliveries import services
from integrations.deliveries.admin_search import deliveries_search
from integrations.models import Delivery
from tests.integrations.deliveries.conftest import CARD, LIST
from tests.integrations.deliveries.test_admin import dead_letters

pytestmark = pytest.mark.django_db

URL = "/admin/integrations/delivery/"


def _found(admin_client, term) -> set[int]:
    page = admin_client.get(URL, {"q": term})
    assert page.status_code == 200, term
    return {d.pk for d in page.context["cl"].result_list}


@pytest.fixture
def keyed(acme, api_key):
    delivery, _ = services.delivery_create(
        api_key=api_key[0],
        idempotency_key="Order-77",
        customer="acme",
        action="trello.move_card",
        input={"card_id": CARD, "list_id": LIST},
    )
    # Nested values and numbers, as other providers' inputs have them.
    delivery.input = {"card_id": CARD, "pos": 31337, "meta": {"events": ["evt_9Qx"]}}
    delivery.save(update_fields=["input"])
    return delivery


def test_finds_ids_keys_and_input_values(admin_client, keyed):
    other = dead_letters(1)[0]
    for term in (str(keyed.pk), str(keyed.key), "Order-77", "evt_9Qx", "31337"):
        assert _found(admin_client, term) == {keyed.pk}, term
    assert _found(admin_client, CARD) == {keyed.pk, other}
    assert _found(admin_client, "order-77") == set()  # idempotency keys are exact


def test_finds_an_error_substring_customer_and_action(admin_client, keyed):
    (dead,) = dead_letters(1)
    assert _found(admin_client, "upstream trouble") == {dead}
    assert _found(admin_client, '"503: upstream"') == {dead}
    assert _found(admin_client, "acme") == {dead, keyed.pk}
    assert _found(admin_client, "move_card") == {dead, keyed.pk}
    # Every word must match: the error word narrows the customer's deliveries.
    assert _found(admin_client, "acme trouble") == {dead}


def test_short_or_unknown_words_match_no_text(admin_client, keyed):
    dead_letters(1)
    assert _found(admin_client, "ro") == set()  # in "trouble", but under three characters
    assert _found(admin_client, "nothing-like-it") == set()
    for term in ("99999999999999999999999", "²³⁴", '"unclosed', "\\%_"):
        assert _found(admin_client, term) == set(), term
    assert admin_client.get(URL, {"q": "evt\x00_9Qx"}).status_code == 400  # Django refuses NUL
    assert len(_found(admin_client, "   ")) == 2


def _plan(queryset) -> str:
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        # A test table is small: without this the planner rightly prefers reading it.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_postgres_search_stays_on_indexes(keyed):
    if connection.vendor != "postgresql":
        pytest.skip("the search indexes are PostgreSQL's (migration 0012)")
    for term, indexes in (
        ("evt_9Qx", ["delivery_input_values", "delivery_error_trgm"]),
        # On a big table the planner picks the unique index; on this one, the key's own.
        ("Order-77", ["integrations_delivery_api_key_id|delivery_unique_idempotency_key"]),
        (str(keyed.pk), ["integrations_delivery_pkey"]),
        (str(keyed.key), ["integrations_delivery_key_key"]),
    ):
        plan = _plan(deliveries_search(Delivery.objects.all(), term))
        assert all(re.search(rf"Scan (on|using) ({index})", plan) for index in indexes), plan
        assert "Seq Scan" not in plan, plan
