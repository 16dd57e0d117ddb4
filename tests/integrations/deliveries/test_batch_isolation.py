"""One delivery of a batch never costs the others: an attempt that raises is settled as a failed
attempt with its error class, and a settle the database refuses is written alone."""

import pytest
import responses
from django.db import DataError

from config import db
from integrations.deliveries import services
from integrations.deliveries.services import attempt as attempt_module
from integrations.deliveries.services import settle as settle_module
from integrations.models import Delivery, DeliveryAttempt
from integrations.services import integration_create
from tests.integrations.deliveries.conftest import CARD_URL, LIST

pytestmark = pytest.mark.django_db

Status = Delivery.Status
CARD_JSON = {"id": "5abbe4b7ddc1b351ef961414", "idList": LIST}


@pytest.fixture
def three(trello_credential, move_card):
    """Three due trello.move_card deliveries, not queued."""
    return [services.delivery_create(api_key=None, **move_card)[0].pk for _ in range(3)]


def _send_crashing_on(delivery_id, exc, monkeypatch):
    attempt = attempt_module._attempt

    def crashing(delivery, cache):
        if delivery.pk == delivery_id:
            raise exc
        return attempt(delivery, cache)

    monkeypatch.setattr(attempt_module, "_attempt", crashing)


@responses.activate
@pytest.mark.parametrize(
    ("exc", "status", "outcome"),
    [
        (OverflowError("date value out of range"), Status.DEAD, "terminal"),
        (ConnectionResetError("pool gone"), Status.PENDING, "retryable"),
    ],
)
def test_an_attempt_that_raises_is_a_failed_attempt_and_the_batch_goes_on(
    three, exc, status, outcome, monkeypatch
):
    responses.put(CARD_URL, json=CARD_JSON)
    first, crashing, last = three
    _send_crashing_on(crashing, exc, monkeypatch)

    results = services.deliveries_attempt(delivery_ids=three)

    assert results == {first: Status.SUCCEEDED, crashing: status, last: Status.SUCCEEDED}
    delivery = Delivery.objects.get(pk=crashing)
    assert (delivery.status, delivery.lease_token, delivery.attempts) == (status, None, 1)
    logged = DeliveryAttempt.objects.get(delivery=crashing)
    assert (logged.outcome, logged.error_class) == (outcome, exc.__class__.__name__)
    assert exc.__class__.__name__ in delivery.last_error


@responses.activate
def test_a_settle_the_database_refuses_is_written_alone(three, monkeypatch):
    """One delivery's outcome cannot be stored (as a NUL in a result on PostgreSQL): it is
    written alone without the refused value; the others of its group are settled normally."""
    responses.put(CARD_URL, json=CARD_JSON)
    first, refused, _ = three
    update_many = db.update_fields_many

    def refusing(rows, fields):
        if any(row.pk == refused and row.result is not None for row in rows):
            raise DataError("unsupported Unicode escape sequence")
        return update_many(rows, fields)

    monkeypatch.setattr(settle_module, "update_fields_many", refusing)
    results = services.deliveries_attempt(delivery_ids=three)

    assert results == dict.fromkeys(three, Status.SUCCEEDED)
    assert Delivery.objects.get(pk=refused).result is None
    assert Delivery.objects.get(pk=first).result is not None
    note = DeliveryAttempt.objects.get(delivery=refused).response_body
    assert note == "[not stored: the database refused it (DataError)]"
    assert DeliveryAttempt.objects.count() == 3  # one row per request sent, none twice


def test_a_retried_dead_letter_gets_its_integrations_retry_budget(
    acme, trello_credential, move_card
):
    integration_create(customer=acme, provider_key="trello", config={"retry": {"max_attempts": 3}})
    delivery, _ = services.delivery_create(api_key=None, **move_card)
    assert delivery.attempt_limit == 3
    Delivery.objects.filter(pk=delivery.pk).update(status=Status.DEAD, attempts=3)

    assert services.dead_letters_retry(ids=[delivery.pk]) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_limit, delivery.manual_retry) == (
        Status.PENDING,
        6,
        True,
    )
