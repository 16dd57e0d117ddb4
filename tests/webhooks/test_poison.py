"""A poison event among other customers' good events in one batch (issue 15): the good ones are
processed in that same call, with their deliveries; the poison one is rolled back alone (no
delivery left behind), failed, and dead-lettered after its attempts; an event out of attempts is
never claimed or relayed again. Runs on the test database of the run: SQLite by default,
PostgreSQL with DATABASE_URL (the \\u0000 case only fails there)."""

import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from integrations.models import Delivery
from integrations.outbox import EXHAUSTED_REASON, Outbox
from integrations.providers import wire as providers_wire
from webhooks import services
from webhooks.models import InboundEvent
from webhooks.services import processing

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status
BODY = b'{"type": "invoice.paid", "timestamp": "2025-04-22T19:30:00Z", "data": {%s}}'
NAN_BODY = BODY % b'"amount": NaN'
NUL_BODY = BODY % b'"note": "a\\u0000b"'
GOOD_BODY = BODY % b'"amount": 1'
ATTEMPT_LIMIT = 2


def _process(ids: list[int]) -> dict[int, str]:
    with mock.patch.object(processing.time, "sleep"):
        return services.inbound_events_process(event_ids=ids)


def _deliveries(event_id: int) -> int:
    return Delivery.objects.filter(input__event=event_id).count()


def _relayed() -> list[int]:
    with mock.patch.object(Outbox, "enqueue") as enqueue:
        services.inbound_events_relay_due()
    return [pk for call in enqueue.call_args_list for pk in call.args[0]]


@pytest.fixture
def batch(make_endpoint, post_webhook, acme, globex):
    """Make ``(good ids, poison id)``: globex's signed events around one acme event stored with
    ``body`` (an attempt limit of 2), all received and due; the customers named in
    ``subscribers`` subscribe to all their events (an event without deliveries is written with
    the batch's one UPDATE, one with deliveries under their savepoint)."""

    def make(body: bytes, *, subscribers: str):
        endpoints = {
            "acme": make_endpoint("standard_webhooks"),
            "globex": make_endpoint("standard_webhooks", customer=globex),
        }
        for customer in [c for c in (acme, globex) if c.slug in subscribers]:
            services.subscription_create(
                url=f"http://127.0.0.1:9/{customer.slug}",
                event_types=["*"],
                allow_private=True,
                customer=customer,
            )
        with mock.patch.object(Outbox, "enqueue"):  # stored and due, not yet processed
            assert post_webhook(endpoints["globex"], msg_id="msg_good_1").status_code == 202
            poison = InboundEvent.objects.create(
                endpoint=endpoints["acme"],
                provider="standard_webhooks",
                external_id="msg_poison",
                body=body,
                headers={},
                attempt_limit=ATTEMPT_LIMIT,
                next_attempt_at=timezone.now(),
            )
            assert post_webhook(endpoints["globex"], msg_id="msg_good_2").status_code == 202
        good = list(
            InboundEvent.objects.exclude(pk=poison.pk).order_by("pk").values_list("pk", flat=True)
        )
        assert len(good) == 2 and good[0] < poison.pk < good[1]
        return good, poison.pk

    return make


def _assert_good_processed(outcomes: dict, good: list[int], subscribers: str) -> None:
    """In that same call, with their deliveries."""
    assert {pk: outcomes.get(pk) for pk in good} == dict.fromkeys(good, Status.PROCESSED)
    for event in InboundEvent.objects.filter(pk__in=good):
        assert event.envelope["customer"] == "globex"
        assert _deliveries(event.pk) == ("globex" in subscribers)


def _assert_never_again(poison: int, good: list[int]) -> None:
    assert _process([*good, poison]) == {}
    assert poison not in _relayed()
    assert InboundEvent.objects.get(pk=poison).status == Status.DEAD


SUBSCRIBERS = ["nobody", "globex", "acme+globex"]


@pytest.mark.parametrize("subscribers", SUBSCRIBERS)
@pytest.mark.parametrize("body", [NAN_BODY, NUL_BODY], ids=["nan", "nul"])
def test_a_body_the_database_cannot_store_is_refused_before_it(batch, body, subscribers):
    """NaN is not JSON and jsonb has no \\u0000: the envelope is refused as a malformed payload
    on every backend, without a failed write, and dead at once (it never gets better)."""
    good, poison = batch(body, subscribers=subscribers)
    outcomes = _process([good[0], poison, good[1]])
    _assert_good_processed(outcomes, good, subscribers)
    assert outcomes[poison] == Status.DEAD
    event = InboundEvent.objects.get(pk=poison)
    assert event.error.startswith("Malformed payload: Body")
    assert (event.envelope, event.type, _deliveries(poison)) == (None, "", 0)
    _assert_never_again(poison, good)


def _bypass_the_check(monkeypatch, poison: int) -> None:
    """A failure the code did not foresee: the database refuses the row (NaN in JSON: SQLite's
    JSON check and PostgreSQL's jsonb; \\u0000: jsonb)."""
    monkeypatch.setattr(providers_wire, "_not_json", float)  # parse NaN as Python does
    monkeypatch.setattr(providers_wire, "json_violation", lambda payload: None)  # and keep NUL
    monkeypatch.setattr(processing, "_storable", lambda envelope: None)


def _refused_write(monkeypatch, poison: int) -> None:
    """The database refuses the poison event's processed row, on any backend (invalid JSON)."""
    field = InboundEvent._meta.get_field("envelope")
    real, key = field.get_db_prep_save, InboundEvent.objects.get(pk=poison).key

    def prep(value, connection):
        if isinstance(value, dict) and value.get("id") == f"evt_{key.hex}":
            return "{not json"
        return real(value, connection)

    monkeypatch.setattr(field, "get_db_prep_save", prep)


def _unforeseen_error(monkeypatch, poison: int) -> None:
    """Writing the poison event's processed row raises before the database sees it."""
    field = InboundEvent._meta.get_field("envelope")
    real, key = field.get_db_prep_save, InboundEvent.objects.get(pk=poison).key

    def prep(value, connection):
        if isinstance(value, dict) and value.get("id") == f"evt_{key.hex}":
            raise RuntimeError("unforeseen")
        return real(value, connection)

    monkeypatch.setattr(field, "get_db_prep_save", prep)


FAILURES = {
    "nan-in-the-database": (NAN_BODY, _bypass_the_check),
    "nul-in-the-database": (NUL_BODY, _bypass_the_check),
    "refused-write": (GOOD_BODY, _refused_write),
    "unforeseen-error": (GOOD_BODY, _unforeseen_error),
}


@pytest.mark.parametrize("subscribers", SUBSCRIBERS)
@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_write_fails_its_event_alone_until_it_is_dead(
    batch, monkeypatch, failure, subscribers
):
    body, arrange = FAILURES[failure]
    if failure == "nul-in-the-database" and connection.vendor != "postgresql":
        pytest.skip("SQLite stores \\u0000 in JSON: only PostgreSQL's jsonb refuses it")
    good, poison = batch(body, subscribers=subscribers)
    arrange(monkeypatch, poison)

    outcomes = _process([good[0], poison, good[1]])
    _assert_good_processed(outcomes, good, subscribers)
    assert outcomes[poison] == Status.FAILED
    event = InboundEvent.objects.get(pk=poison)
    assert (event.status, event.attempts, event.lease_token) == (Status.FAILED, 1, None)
    assert event.error and event.next_attempt_at is not None
    # Rolled back alone: no envelope, no type, no delivery of it left behind.
    assert (event.envelope, event.type, _deliveries(poison)) == (None, "", 0)

    InboundEvent.objects.filter(pk=poison).update(next_attempt_at=timezone.now())
    outcomes = _process([good[0], poison, good[1]])
    assert outcomes == {poison: Status.DEAD}  # the good ones were done the first time
    event = InboundEvent.objects.get(pk=poison)
    assert f"gave up after {ATTEMPT_LIMIT} attempts" in event.error
    assert (event.attempts, _deliveries(poison)) == (ATTEMPT_LIMIT, 0)
    assert {_deliveries(pk) for pk in good} == {"globex" in subscribers}  # not fanned out twice
    _assert_never_again(poison, good)


def test_an_escaped_backslash_is_not_taken_for_a_nul(batch):
    _, event = batch(BODY % b'"path": "C:\\\\u0000"', subscribers="nobody")
    assert _process([event]) == {event: Status.PROCESSED}
    assert InboundEvent.objects.get(pk=event).envelope["data"] == {"path": "C:\\u0000"}


def test_an_event_out_of_attempts_is_never_claimed_and_the_relay_dead_letters_it(batch):
    """A waiting event whose attempts reached its limit (its last settle was refused) is left by
    the claim; the relay dead-letters it, with the reason and its last error, instead of
    queueing it."""
    good, exhausted = batch(GOOD_BODY, subscribers="nobody")
    InboundEvent.objects.filter(pk=exhausted).update(
        attempts=ATTEMPT_LIMIT,
        attempt_limit=ATTEMPT_LIMIT,
        status=Status.FAILED,
        error="OperationalError: gone",
    )
    InboundEvent.objects.update(enqueued_until=None)

    assert _process([exhausted]) == {}
    assert InboundEvent.objects.get(pk=exhausted).attempts == ATTEMPT_LIMIT  # not claimed
    assert sorted(_relayed()) == good
    event = InboundEvent.objects.get(pk=exhausted)
    assert event.status == Status.DEAD
    assert event.error == f"{EXHAUSTED_REASON} Last error: OperationalError: gone"
    assert (event.lease_token, event.enqueued_until, event.processed_at is not None) == (
        None,
        None,
        True,
    )


def test_an_event_whose_worker_died_on_its_last_attempt_is_dead_lettered(batch):
    """Its worker died (or its transaction failed) during its last attempt: the lease expired
    with the attempt counted. Lease recovery dead-letters it with the reason and its last
    error; an event whose lease is still live is left to its worker."""
    (lost, leased), _ = batch(GOOD_BODY, subscribers="nobody")
    past, future = timezone.now() - timedelta(seconds=1), timezone.now() + timedelta(seconds=60)
    last = {
        "attempts": ATTEMPT_LIMIT,
        "attempt_limit": ATTEMPT_LIMIT,
        "lease_token": uuid.uuid4(),
        "status": Status.PROCESSING,
    }
    InboundEvent.objects.filter(pk=lost).update(
        **last, lease_until=past, error="OperationalError: gone"
    )
    InboundEvent.objects.filter(pk=leased).update(**last, lease_until=future)

    assert services.inbound_events_recover_leases() == 1
    event = InboundEvent.objects.get(pk=lost)
    assert event.status == Status.DEAD
    assert event.error == f"{services.INBOUND.lost_error} Last error: OperationalError: gone"
    assert (event.lease_token, event.lease_until) == (None, None)
    assert InboundEvent.objects.get(pk=leased).status == Status.PROCESSING
    assert services.inbound_events_recover_leases() == 0
