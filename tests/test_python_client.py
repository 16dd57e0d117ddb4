"""The official Python client (clients/python) against a running Switchyard: Django's live
server on the test database, real HTTP on loopback. Queued tasks run inline (the suite's
django-q2 is synchronous) and the provider is out of reach, so a send fails and is retried
later."""

import pytest
from switchyard_client import ApiError, Client

from credentials.services import credential_create
from customers.services import api_key_create
from integrations.deliveries.models import Delivery
from integrations.services import integration_create

pytestmark = pytest.mark.django_db(transaction=True)

MOVE = {"card_id": "card1", "list_id": "c" * 24}


@pytest.fixture
def client(live_server, acme):
    credential_create(
        provider="trello",
        purpose="api",
        customer=acme,
        fields={"api_key": "a" * 32, "token": "b" * 64},
    )
    integration_create(
        customer=acme, provider_key="trello", config={"base_url": "https://trello.example/1"}
    )
    raw_key = api_key_create(name="client-test", customers=[acme])[1]
    with Client(live_server.url, raw_key) as client:
        yield client


def test_a_delivery_is_created_once_per_logical_call_and_read_back(client):
    first = client.create_delivery(
        customer="acme", action="trello.move_card", input=MOVE, idempotency_key="order-1"
    )
    again = client.create_delivery(
        customer="acme", action="trello.move_card", input=MOVE, idempotency_key="order-1"
    )
    assert again["id"] == first["id"] and first["status"] == "pending"
    assert Delivery.objects.count() == 1
    detail = client.get_delivery(first["id"])
    assert detail["id"] == first["id"]
    assert [a["outcome"] for a in detail["attempts"]] == ["retryable"]


def test_invalid_input_is_an_api_error_naming_the_field(client):
    with pytest.raises(ApiError) as caught:
        client.create_delivery(customer="acme", action="trello.move_card", input={"card_id": ""})
    assert caught.value.status == 400 and "input" in caught.value.errors
    with pytest.raises(ApiError) as caught:
        client.create_delivery(customer="globex", action="trello.move_card", input=MOVE)
    assert caught.value.status == 400 and "customer" in caught.value.errors


def test_lists_are_followed_across_pages(client):
    created = {
        client.create_delivery(
            customer="acme", action="trello.move_card", input={**MOVE, "card_id": f"c{n}"}
        )["id"]
        for n in range(5)
    }
    assert {d["id"] for d in client.list_deliveries(page_size=2)} == created


def test_validation_and_a_dry_run_change_nothing(client):
    assert client.validate_action(customer="acme", action="trello.move_card", input=MOVE)
    answer = client.retry_dead_letters(filter={"customer": "acme"}, dry_run=True)
    assert answer == {"dry_run": True, "would_retry": 0}
    assert Delivery.objects.count() == 0
