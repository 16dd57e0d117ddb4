import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from config.api.problems import ProblemConflict
from config.prepared import PreparedRead
from customers.services import api_key_create
from integrations.deliveries import services
from integrations.deliveries.services import accept, upkeep
from integrations.models import Delivery, DeliveryAttempt
from integrations.outbox import Outbox
from integrations.outbox import broker as outbox
from tests.compiled import compiles
from tests.integrations.deliveries.conftest import CARD, CARD_URL, LIST, TRELLO_KEY, TRELLO_TOKEN

pytestmark = pytest.mark.django_db

Status = Delivery.Status
CARD_JSON = {"id": CARD, "idList": LIST, "idBoard": "5abbe4b7ddc1b351ef961416"}


def create(api_key=None, key=None, **body):
    body = {"customer": "acme", "action": "trello.move_card", **body}
    body.setdefault("input", {"card_id": CARD, "list_id": LIST})
    return services.delivery_create(api_key=api_key, idempotency_key=key, **body)


def make_due(delivery):
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def attempt(delivery):
    return services.deliveries_attempt(delivery_ids=[delivery.pk]).get(delivery.pk)


# --- accepting --------------------------------------------------------------------------------


def test_create_stores_a_pending_delivery_and_queues_it_on_commit(
    acme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        delivery, replayed = create()
    assert not replayed
    assert len(callbacks) == 1
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert (delivery.provider_key, delivery.operation) == ("trello", "move_card")
    assert delivery.input == {"card_id": CARD, "list_id": LIST}
    assert delivery.attempt_limit == 10
    assert delivery.next_attempt_at <= timezone.now()


def test_a_customer_goes_to_the_broker_at_once_up_to_the_workers_then_to_the_relay(
    acme, settings, django_capture_on_commit_callbacks
):
    """The INSERT decides: while fewer than a cluster's workers wait in the broker the row is
    marked queued and sent to the broker on commit; at the limit it waits for the relay; a
    scheduled one always does; a delivery a worker has taken (in flight) makes room again."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT = 10
    with django_capture_on_commit_callbacks() as callbacks:
        first, second, third = (create()[0] for _ in range(3))
        scheduled, _ = create(not_before=timezone.now() + timedelta(minutes=5))
    assert len(callbacks) == 2
    queued = {d.pk: d.enqueued_until for d in Delivery.objects.all()}
    assert queued[first.pk] is not None and queued[second.pk] is not None
    assert queued[third.pk] is None and third.enqueued_until is None
    assert queued[scheduled.pk] is None
    Delivery.objects.filter(pk=first.pk).update(status=Status.IN_FLIGHT, enqueued_until=None)
    with django_capture_on_commit_callbacks() as callbacks:
        fourth, _ = create()
    assert len(callbacks) == 1 and Delivery.objects.get(pk=fourth.pk).enqueued_until is not None


def test_a_customer_at_its_in_flight_cap_waits_for_the_relay_however_empty_the_broker(
    acme, settings, django_capture_on_commit_callbacks
):
    """Queued and in flight together stay within SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT: with room
    for 2 in the broker and a cap of 5, a customer with 4 in flight is left to the relay (which
    keeps the cap); with 3 it is queued at once."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT = 5
    flying = [create()[0] for _ in range(4)]
    Delivery.objects.filter(pk__in=[d.pk for d in flying]).update(
        status=Status.IN_FLIGHT, enqueued_until=None
    )
    with django_capture_on_commit_callbacks() as callbacks:
        held, _ = create()
    assert not callbacks and Delivery.objects.get(pk=held.pk).enqueued_until is None
    Delivery.objects.filter(pk=flying[0].pk).update(status=Status.SUCCEEDED)
    with django_capture_on_commit_callbacks() as callbacks:
        sent, _ = create()
    assert len(callbacks) == 1 and Delivery.objects.get(pk=sent.pk).enqueued_until is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer": "nobody"}, "customer"),
        ({"action": "trello.fly"}, "action"),
        ({"action": "nowhere.move"}, "action"),
        ({"input": {"card_id": CARD}}, "input"),
        ({"input": {"card_id": CARD, "list_id": "not-an-id"}}, "input"),
    ],
)
def test_bad_input_stores_nothing(acme, body, field):
    with pytest.raises(ValidationError) as error:
        create(**body)
    assert field in error.value.detail
    assert not Delivery.objects.exists()


def test_inactive_customer_is_refused(acme):
    acme.active = False
    acme.save()
    with pytest.raises(ValidationError, match="inactive"):
        create()


def test_restricted_key_cannot_deliver_for_another_customer(acme, globex):
    key, _ = api_key_create(name="globex-only", customers=[globex])
    with pytest.raises(ValidationError, match="Unknown customer"):
        create(api_key=key)


# --- idempotency ------------------------------------------------------------------------------


def test_same_key_and_body_replays_the_original(acme, api_key):
    first, _ = create(api_key=api_key[0], key="order-42")
    again, replayed = create(api_key=api_key[0], key="order-42")
    assert replayed and again.pk == first.pk
    assert Delivery.objects.count() == 1


def test_same_key_different_body_is_422(acme, api_key):
    create(api_key=api_key[0], key="order-42")
    with pytest.raises(services.IdempotencyKeyReused) as error:
        create(api_key=api_key[0], key="order-42", input={"card_id": CARD, "list_id": "f" * 24})
    assert error.value.status_code == 422
    assert Delivery.objects.count() == 1


def test_keys_are_scoped_to_the_api_key(acme, api_key):
    other, _ = api_key_create(name="other-app")
    first, _ = create(api_key=api_key[0], key="order-42")
    second, replayed = create(api_key=other, key="order-42")
    assert not replayed and second.pk != first.pk


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_bad_idempotency_keys_are_refused(acme, api_key, key):
    with pytest.raises(ValidationError) as error:
        create(api_key=api_key[0], key=key)
    assert "Idempotency-Key" in error.value.detail
    assert not Delivery.objects.exists()


def test_the_platforms_own_calls_with_a_key_are_idempotent(acme):
    """No API key: the unique (api_key, key) constraint holds NULLs distinct, a lookup finds it."""
    first, replayed = create(key="fan-out-1")
    again, replayed_again = create(key="fan-out-1")
    assert (again.pk, replayed, replayed_again) == (first.pk, False, True)
    assert Delivery.objects.filter(idempotency_key="fan-out-1").count() == 1


def test_key_still_being_created_elsewhere_is_409(acme, api_key, monkeypatch):
    """The insert lost the race on the unique key but the winner is not visible yet."""
    from django.db import IntegrityError

    def racing_insert(delivery, **conditions):
        raise IntegrityError("UNIQUE constraint failed")

    monkeypatch.setattr(accept, "insert_one", racing_insert)
    with pytest.raises(ProblemConflict):
        create(api_key=api_key[0], key="order-42")


def test_old_idempotency_keys_are_purged(acme, api_key, settings):
    old, _ = create(api_key=api_key[0], key="old")
    fresh, _ = create(api_key=api_key[0], key="fresh")
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=49))
    assert services.idempotency_keys_purge() == 1
    assert Delivery.objects.get(pk=old.pk).idempotency_key is None
    assert Delivery.objects.get(pk=fresh.pk).idempotency_key == "fresh"
    _, replayed = create(api_key=api_key[0], key="old")
    assert not replayed


# --- attempts ---------------------------------------------------------------------------------


@responses.activate
def test_success_records_the_attempt_with_secrets_masked(trello_credential):
    responses.put(CARD_URL, json=CARD_JSON)
    delivery, _ = create()
    assert attempt(delivery) == Status.SUCCEEDED
    delivery.refresh_from_db()
    assert delivery.result == {"card_id": CARD, "list_id": LIST, "board_id": CARD_JSON["idBoard"]}
    assert delivery.finished_at is not None
    [logged] = delivery.attempt_log.all()
    assert (logged.number, logged.outcome, logged.response_status) == (1, "success", 200)
    assert logged.credential_version == 1
    assert logged.request_method == "PUT"
    assert CARD in logged.request_url
    # Trello puts key and token in the query string; the log must not.
    record = str(DeliveryAttempt.objects.filter(pk=logged.pk).values().get())
    assert TRELLO_KEY not in record and TRELLO_TOKEN not in record
    sent = responses.calls[0].request
    assert TRELLO_TOKEN in sent.url or TRELLO_TOKEN in sent.headers.get("Authorization", "")


@responses.activate
def test_5xx_three_times_then_success_on_attempt_four(trello_credential):
    for status in (500, 502, 503):
        responses.put(CARD_URL, status=status, body="upstream trouble")
    responses.put(CARD_URL, json=CARD_JSON)
    delivery, _ = create()
    statuses = []
    for _ in range(4):
        make_due(delivery)
        statuses.append(attempt(delivery))
    assert statuses == [Status.PENDING, Status.PENDING, Status.PENDING, Status.SUCCEEDED]
    log = list(delivery.attempt_log.order_by("number"))
    assert [a.response_status for a in log] == [500, 502, 503, 200]
    # Full-jitter backoff: each delay within base * 2**(n-1).
    for number, logged in enumerate(log[:3], start=1):
        assert 0 <= logged.next_delay_seconds <= 2 * 2 ** (number - 1)
    assert log[3].next_delay_seconds is None


@responses.activate
def test_retry_waits_for_its_time(trello_credential):
    responses.put(CARD_URL, status=503)
    delivery, _ = create()
    attempt(delivery)
    delivery.refresh_from_db()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(60))
    assert attempt(delivery) is None, "a delivery that is not due must not be claimed"
    assert delivery.attempt_log.count() == 1


@responses.activate
def test_400_dead_letters_at_once(trello_credential):
    responses.put(CARD_URL, status=400, body="invalid id")
    delivery, _ = create()
    assert attempt(delivery) == Status.DEAD
    delivery.refresh_from_db()
    assert delivery.dead_reason == Delivery.DeadReason.NON_RETRYABLE
    assert "invalid id" in delivery.last_error
    assert delivery.attempts == 1


@responses.activate
def test_401_dead_letters_as_auth_failure(trello_credential):
    responses.put(CARD_URL, status=401, body="invalid token")
    delivery, _ = create()
    assert attempt(delivery) == Status.DEAD
    assert Delivery.objects.get(pk=delivery.pk).dead_reason == Delivery.DeadReason.AUTH_FAILED


@responses.activate
def test_429_waits_as_long_as_trello_needs(trello_credential):
    responses.put(
        CARD_URL,
        status=429,
        json={"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
    )
    delivery, _ = create()
    before = timezone.now()
    assert attempt(delivery) == Status.PENDING
    delivery.refresh_from_db()
    [logged] = delivery.attempt_log.all()
    assert logged.outcome == "rate_limited"
    assert logged.next_delay_seconds == 10
    assert delivery.next_attempt_at >= before + timedelta(seconds=10)


@responses.activate
def test_retries_exhausted_dead_letter(trello_credential, acme):
    from integrations.services import integration_create

    integration_create(customer=acme, provider_key="trello", config={"retry": {"max_attempts": 2}})
    responses.put(CARD_URL, status=500)
    delivery, _ = create()
    assert delivery.attempt_limit == 2
    make_due(delivery)
    assert attempt(delivery) == Status.PENDING
    make_due(delivery)
    assert attempt(delivery) == Status.DEAD
    delivery.refresh_from_db()
    assert delivery.dead_reason == Delivery.DeadReason.ATTEMPTS_EXHAUSTED
    assert "gave up after 2 attempts" in delivery.last_error


def test_missing_credential_is_a_configuration_dead_letter(acme):
    delivery, _ = create()
    assert attempt(delivery) == Status.DEAD
    delivery.refresh_from_db()
    assert delivery.dead_reason == Delivery.DeadReason.CONFIGURATION
    assert "trello" in delivery.last_error and "acme" in delivery.last_error
    assert delivery.attempt_log.get().error_class == "credential_not_configured"


@responses.activate
def test_connection_error_is_retried(trello_credential):
    from requests.exceptions import ConnectionError as RequestsConnectionError

    responses.put(CARD_URL, body=RequestsConnectionError("connection refused"))
    delivery, _ = create()
    assert attempt(delivery) == Status.PENDING
    assert delivery.attempt_log.get().error_class == "connection_error"


@responses.activate
def test_two_workers_never_run_one_delivery(trello_credential):
    """A claimed delivery cannot be claimed again while its lease runs."""
    claims = []

    def second_worker_tries(request):
        claims.append(services.deliveries_attempt(delivery_ids=[delivery.pk]).get(delivery.pk))
        return (200, {}, json.dumps(CARD_JSON))

    delivery, _ = create()
    responses.add_callback(responses.PUT, CARD_URL, callback=second_worker_tries)
    assert attempt(delivery) == Status.SUCCEEDED
    assert claims == [None]
    assert len(responses.calls) == 1


@responses.activate
def test_a_worker_whose_lease_was_taken_over_does_not_overwrite(trello_credential):
    def lease_expires_and_is_recovered(request):
        Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(1))
        services.deliveries_recover_leases()
        return (500, {}, "slow and failing")

    delivery, _ = create()
    responses.add_callback(responses.PUT, CARD_URL, callback=lease_expires_and_is_recovered)
    assert attempt(delivery) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING  # as recovery left it, ready for another worker
    assert "Worker lost" in delivery.last_error
    assert delivery.attempt_log.count() == 1  # the slow attempt is still in the log


# --- upkeep -----------------------------------------------------------------------------------


def test_expired_leases_are_recovered(acme):
    delivery, _ = create()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Status.IN_FLIGHT, attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert services.deliveries_recover_leases() == 1
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.next_attempt_at <= timezone.now()


def test_expired_lease_on_the_last_attempt_dead_letters(acme):
    delivery, _ = create()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Status.IN_FLIGHT, attempts=10, lease_until=timezone.now() - timedelta(seconds=1)
    )
    services.deliveries_recover_leases()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.dead_reason) == (Status.DEAD, "worker_lost")


def test_live_leases_are_left_alone(acme):
    delivery, _ = create()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Status.IN_FLIGHT, attempts=1, lease_until=timezone.now() + timedelta(seconds=30)
    )
    assert services.deliveries_recover_leases() == 0


@responses.activate
def test_relay_queues_due_work_once(trello_credential, settings):
    responses.put(CARD_URL, json=CARD_JSON)
    queued_marker, _ = create()  # its API enqueue is still "in the broker"
    lost, _ = create(input={"card_id": CARD, "list_id": "c" * 24})
    Delivery.objects.filter(pk=lost.pk).update(enqueued_until=None)
    # Test settings run tasks inline, so relaying is sending.
    assert services.deliveries_relay_due() == 1
    assert Delivery.objects.get(pk=lost.pk).status == Status.SUCCEEDED
    assert Delivery.objects.get(pk=queued_marker.pk).status == Status.PENDING
    Delivery.objects.filter(pk=queued_marker.pk).update(
        enqueued_until=timezone.now() - timedelta(seconds=1)
    )
    assert services.deliveries_relay_due() == 1
    assert Delivery.objects.get(pk=queued_marker.pk).status == Status.SUCCEEDED


def _due_for_the_relay(monkeypatch, count: int) -> list[int]:
    """``count`` due deliveries no broker message carries; returns the list of ids the relay
    queues (not sent)."""
    enqueued = []
    monkeypatch.setattr(Outbox, "enqueue", lambda _self, ids: enqueued.extend(ids))
    for n in range(count):
        create(input={"card_id": CARD, "list_id": f"{n:024x}"})
    Delivery.objects.update(enqueued_until=None)
    return enqueued


def test_relay_passes_reuse_their_compiled_statements(acme, settings, monkeypatch):
    """The dispatcher runs a pass every fraction of a second: after the first of a shape, a
    pass compiles nothing, whatever the time (a value, not part of the statement)."""
    settings.SWITCHYARD_RELAY_BATCH = 2
    enqueued = _due_for_the_relay(monkeypatch, 4)
    assert services.deliveries_relay_due() == 4  # two picks of two: both shapes compiled
    compiled = compiles(monkeypatch, PreparedRead)
    Delivery.objects.update(enqueued_until=timezone.now() - timedelta(seconds=1))
    assert services.deliveries_relay_due() == 4
    assert services.deliveries_relay_due() == 0  # an idle pass
    assert compiled == []
    assert sorted(enqueued) == sorted([*Delivery.objects.values_list("pk", flat=True)] * 2)


def test_relay_respects_the_broker_backlog_limit(acme, settings, monkeypatch):
    settings.SWITCHYARD_RELAY_MAX_QUEUED = 3
    settings.SWITCHYARD_RELAY_BATCH = 2
    enqueued = _due_for_the_relay(monkeypatch, 5)
    assert services.deliveries_relay_due() == 3
    assert len(enqueued) == 3


def test_enqueue_failure_leaves_the_delivery_for_the_dispatcher(
    acme, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(outbox, "async_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        delivery, _ = create()
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.enqueued_until is None  # the relay picks it up on its next pass


# --- manual control ---------------------------------------------------------------------------


def _dead(n=1):
    deliveries = []
    for i in range(n):
        delivery, _ = create(input={"card_id": CARD, "list_id": f"{i:024x}"})
        deliveries.append(delivery)
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        status=Status.DEAD,
        attempts=10,
        dead_reason="attempts_exhausted",
        finished_at=timezone.now(),
    )
    return deliveries


@responses.activate
def test_retrying_a_dead_letter_sends_it_again_as_manual(
    trello_credential, django_capture_on_commit_callbacks
):
    responses.put(CARD_URL, json=CARD_JSON)
    [dead] = _dead()
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_retry(delivery=dead)
    delivery = Delivery.objects.get(pk=dead.pk)
    assert delivery.status == Status.SUCCEEDED  # tasks run inline in tests
    logged = delivery.attempt_log.get()
    assert (logged.number, logged.trigger) == (11, "manual")
    assert delivery.attempt_limit == 20


def test_only_dead_letters_can_be_retried(acme):
    delivery, _ = create()
    with pytest.raises(ProblemConflict):
        services.delivery_retry(delivery=delivery)


def test_bulk_retry_is_chunked(acme, monkeypatch):
    monkeypatch.setattr(upkeep, "BULK_CHUNK", 7)
    dead = _dead(20)
    retried = services.dead_letters_retry(queryset=Delivery.objects.all())
    assert retried == 20
    assert set(Delivery.objects.values_list("status", flat=True)) == {Status.PENDING}
    assert all(
        d.enqueued_until is None for d in Delivery.objects.filter(pk__in=[d.pk for d in dead])
    )


def test_cancel(acme):
    delivery, _ = create()
    assert services.delivery_cancel(delivery=delivery).status == Status.CANCELLED
    with pytest.raises(ProblemConflict):
        services.delivery_cancel(delivery=delivery)
