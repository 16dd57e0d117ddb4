"""Recovery in seconds (DESIGN.md §5): the lease heartbeat, re-queueing work whose broker message
is gone, and duplicate messages that find nothing to claim.

The heartbeat renews from its own thread and connection, so these tests commit their rows
(``transaction=True``) and send to the fake provider server with a latency. Intervals are
shortened; assertions leave a generous margin and never check an exact time."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from django_q.brokers import get_broker

from integrations.deliveries import services
from integrations.deliveries.services import attempt as attempt_module
from integrations.deliveries.services import settle as settle_module
from integrations.dispatcher import workers_probe
from integrations.models import Delivery
from integrations.outbox import LeaseHeartbeat, Outbox
from integrations.outbox import broker as outbox
from tests.integrations.deliveries.conftest import trello_customer_at

Status = Delivery.Status
CARD = "5abbe4b7ddc1b351ef961414"
CARDS = "/trello/1/cards/"
LEASE = 0.6  # renewed every 0.2 s


def heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lease-heartbeat")]


@pytest.fixture
def trello_customer(db, fake_provider):
    """A Trello customer whose integration points at the fake provider server."""
    customer = trello_customer_at(fake_provider.url)
    return customer


@pytest.fixture
def accept(trello_customer, monkeypatch):
    """Store ``n`` due deliveries without queueing them (the test runs the worker's part)."""

    def create(n=1) -> list[int]:
        with monkeypatch.context() as patch:
            patch.setattr(Outbox, "enqueue", lambda _self, ids: None)
            return [
                services.delivery_create(
                    api_key=None,
                    customer="acme",
                    action="workflow.proceed",
                    input={"item": CARD, "to": "done"},
                )[0].pk
                for _ in range(n)
            ]

    return create


@pytest.fixture
def renewals(monkeypatch):
    """Every heartbeat tick as (monotonic time, rows renewed)."""
    ticks = []
    renew = LeaseHeartbeat.renew

    def spy(self):
        renewed = renew(self)
        ticks.append((time.monotonic(), renewed))
        return renewed

    monkeypatch.setattr(LeaseHeartbeat, "renew", spy)
    return ticks


def in_thread(target):
    """Run ``target`` in a thread with its own database connection, closed at the end."""

    def run():
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


# --- the heartbeat ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_heartbeat_keeps_a_slow_send_leased_then_stops(accept, fake_provider, renewals, settings):
    settings.SWITCHYARD_LEASE_SECONDS = LEASE
    fake_provider.fault(path_prefix=CARDS, latency_ms=2000, count=1)  # > 3 leases
    [delivery_id] = accept()
    done = threading.Event()
    recovered, leases = [], []

    def dispatcher():
        # What the dispatcher does every pass, while the send runs.
        while not done.is_set():
            recovered.append(services.deliveries_recover_leases())
            leases.append(Delivery.objects.values_list("lease_until", flat=True).get())
            time.sleep(0.05)

    watcher = in_thread(dispatcher)
    try:
        results = services.deliveries_attempt(delivery_ids=[delivery_id])
    finally:
        done.set()
        watcher.join()
    finished_at = time.monotonic()

    assert results == {delivery_id: Status.SUCCEEDED}
    assert len(fake_provider.journal(CARDS)) == 1  # nobody took the delivery over
    assert set(recovered) == {0}
    held = [lease for lease in leases if lease is not None]
    assert len(set(held)) >= 3  # renewed, the lease moving on with each tick
    assert max(held) - min(held) >= timedelta(seconds=LEASE)
    renewed = [count for _, count in renewals]
    assert renewed.count(1) >= 3 and set(renewed) <= {0, 1}  # one row, one UPDATE per tick

    # Stopped with the batch: no thread left, no tick after it settled.
    assert heartbeat_threads() == []
    ticks = len(renewals)
    time.sleep(4 * LEASE / 3)
    assert len(renewals) == ticks
    assert all(at <= finished_at for at, _ in renewals)
    delivery = Delivery.objects.get()
    assert (delivery.lease_until, delivery.lease_token) == (None, None)


@pytest.mark.django_db(transaction=True)
def test_heartbeat_stops_when_the_batch_fails_and_the_lease_then_expires(
    accept, renewals, settings, monkeypatch
):
    settings.SWITCHYARD_LEASE_SECONDS = LEASE

    def crash(settlements):
        time.sleep(2 * LEASE)
        raise RuntimeError("database gone")

    monkeypatch.setattr(attempt_module, "settle_group", crash)
    [delivery_id] = accept()
    with pytest.raises(RuntimeError):
        services.deliveries_attempt(delivery_ids=[delivery_id])
    assert heartbeat_threads() == []
    assert [renewed for _, renewed in renewals][:2] == [1, 1]  # renewed while it ran
    ticks = len(renewals)

    # Renewals stopped: the lease expires within a lease and recovery gives the delivery back.
    deadline = time.monotonic() + 10 * LEASE
    while not services.deliveries_recover_leases():
        assert time.monotonic() < deadline, "the lease was never recovered"
        time.sleep(0.05)
    assert len(renewals) == ticks
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.lease_token) == (Status.PENDING, None)


@pytest.mark.django_db(transaction=True)
def test_renewal_waits_out_the_batch_settle_transaction_without_deadlock(
    accept, renewals, settings, monkeypatch, caplog
):
    """A tick falls inside the batch's settle transaction (rows locked; on SQLite the write
    lock held under IMMEDIATE): it skips the locked rows or waits for the commit, never the
    other way round, and the batch ends long before SQLite's busy timeout would."""
    settings.SWITCHYARD_LEASE_SECONDS = LEASE
    update_fields_many = settle_module.update_fields_many
    settling = []

    def slow_settle(objs, fields):
        settling.append(time.monotonic())
        time.sleep(3 * LEASE)  # several ticks' worth, inside the settle transaction
        return update_fields_many(objs, fields)

    monkeypatch.setattr(settle_module, "update_fields_many", slow_settle)
    delivery_ids = accept(3)
    started = time.monotonic()
    results = services.deliveries_attempt(delivery_ids=delivery_ids)
    elapsed = time.monotonic() - started

    assert results == dict.fromkeys(delivery_ids, Status.SUCCEEDED)
    assert elapsed < 10  # SQLite's busy timeout is 20 s; PostgreSQL would wait for ever
    assert any(at > settling[0] for at, _ in renewals)  # a tick met the settle
    assert "lease_renewal_failed" not in caplog.text
    assert heartbeat_threads() == []
    assert not Delivery.objects.exclude(lease_token=None).exists()


def test_no_heartbeat_inside_a_transaction(acme):
    """Inside a transaction the claim is invisible to another connection: nothing to renew."""
    heartbeat = LeaseHeartbeat(model=Delivery, ids=[1], token=uuid.uuid4(), lease_seconds=LEASE)
    with heartbeat:
        assert heartbeat_threads() == []
        assert heartbeat.holding()


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_lease_is_not_renewed_starts_no_further_attempt(
    accept, fake_provider, settings, monkeypatch
):
    settings.SWITCHYARD_LEASE_SECONDS = LEASE

    def database_gone(self):
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(LeaseHeartbeat, "renew", database_gone)
    fake_provider.fault(path_prefix=CARDS, latency_ms=int(LEASE * 1000), count=1)
    delivery_ids = accept(3)
    results = services.deliveries_attempt(delivery_ids=delivery_ids)
    # The first send outlasted two failed ticks: the rest were handed back unsent.
    assert results == {delivery_ids[0]: Status.SUCCEEDED}
    assert len(fake_provider.journal(CARDS)) == 1
    rest = Delivery.objects.filter(pk__in=delivery_ids[1:])
    assert {(d.status, d.attempts, d.lease_token) for d in rest} == {(Status.PENDING, 0, None)}


# --- duplicate messages -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_task_finds_nothing_to_claim(accept, fake_provider):
    delivery_ids = accept(2)
    assert services.deliveries_attempt(delivery_ids=delivery_ids) == dict.fromkeys(
        delivery_ids, Status.SUCCEEDED
    )
    assert services.deliveries_attempt(delivery_ids=delivery_ids) == {}
    assert len(fake_provider.journal(CARDS)) == 2
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db(transaction=True)
def test_two_copies_of_a_task_at_once_send_each_delivery_once(accept, fake_provider):
    fake_provider.fault(path_prefix=CARDS, latency_ms=300)
    delivery_ids = accept(3)
    start = threading.Barrier(2)
    results = []

    def worker():
        start.wait()
        results.append(services.deliveries_attempt(delivery_ids=delivery_ids))

    threads = [in_thread(worker) for _ in range(2)]
    for thread in threads:
        thread.join()
    first, second = results
    assert not set(first) & set(second)  # one worker per delivery
    assert {**first, **second} == dict.fromkeys(delivery_ids, Status.SUCCEEDED)
    assert len(fake_provider.journal(CARDS)) == 3
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


# --- lost broker messages -----------------------------------------------------------------------


def queued_ago(seconds: float):
    """The enqueued_until of a row queued ``seconds`` ago."""
    return outbox.enqueued_until() - timedelta(seconds=seconds)


@pytest.fixture
def relayed(monkeypatch):
    ids = []
    monkeypatch.setattr(Outbox, "enqueue", lambda _self, batch: ids.extend(batch))
    return ids


@pytest.fixture
def queued(acme):
    """Five due deliveries marked queued 30 s ago and one marked a moment ago."""
    now = timezone.now()
    rows = [
        Delivery.objects.create(
            customer=acme,
            action="trello.move_card",
            provider_key="trello",
            operation="move_card",
            input={},
            attempt_limit=10,
            next_attempt_at=now,
            enqueued_until=queued_ago(30 - n if n < 5 else 0.5),
        ).pk
        for n in range(6)
    ]
    return rows[:5], rows[5]


def test_rows_whose_broker_message_is_gone_are_queued_again(queued, relayed, monkeypatch):
    monkeypatch.setattr(outbox, "broker_waiting", lambda: 0)
    stale, fresh = queued
    assert services.deliveries_relay_due() == 5
    assert sorted(relayed) == stale  # the fresh one may still be on its way to the broker
    assert Delivery.objects.get(pk=fresh).enqueued_until > timezone.now()
    assert not Delivery.objects.filter(pk__in=stale, enqueued_until=None).exists()


@pytest.mark.parametrize("waiting", [1, None], ids=["broker-covers-them", "broker-unknown"])
def test_rows_the_broker_may_still_carry_are_left_alone(queued, relayed, monkeypatch, waiting):
    """One waiting task may carry all six (SWITCHYARD_SEND_BATCH ids); a broker that cannot
    tell leaves them to the enqueue timeout."""
    monkeypatch.setattr(outbox, "broker_waiting", lambda: waiting)
    assert services.deliveries_relay_due() == 0
    assert relayed == []


def test_only_the_rows_beyond_what_the_broker_carries_are_queued_again(
    queued, relayed, monkeypatch, settings
):
    settings.SWITCHYARD_SEND_BATCH = 2
    monkeypatch.setattr(outbox, "broker_waiting", lambda: 2)  # the newest four rows at most
    stale, _ = queued
    assert services.deliveries_relay_due() == 2
    assert sorted(relayed) == stale[:2]  # the oldest


def test_claimed_rows_are_never_queued_again(queued, relayed, monkeypatch):
    monkeypatch.setattr(outbox, "broker_waiting", lambda: 0)
    stale, _ = queued
    Delivery.objects.filter(pk__in=stale).update(status=Status.IN_FLIGHT)
    assert services.deliveries_relay_due() == 0


def test_broker_waiting_counts_the_tasks_in_the_configured_broker(db, monkeypatch):
    """ORM or Redis, whichever the suite runs with, on a queue of the test's own."""
    broker = get_broker(list_key=f"switchyard-recovery-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(outbox, "_broker", broker)
    try:
        assert outbox.broker_waiting() == 0
        broker.enqueue("one")
        broker.enqueue("two")
        assert outbox.broker_waiting() == 2
    finally:
        broker.delete_queue()

    class Down:
        def queue_size(self):
            raise ConnectionError("broker unreachable")

    monkeypatch.setattr(outbox, "_broker", Down())
    assert outbox.broker_waiting() is None


def test_tasks_are_queued_through_one_broker_client_per_process(queued, monkeypatch):
    """django-q2 makes a client per task unless given one (for Redis, a new connection each);
    after a failure the next task gets a fresh client, and the failed rows go to the relay."""
    made, pushed = [], []

    class Broker:
        list_key = "test"

        def __init__(self, fails=False):
            self.fails = fails
            made.append(self)

        def enqueue(self, pack):
            if self.fails:
                raise ConnectionError("broker unreachable")
            pushed.append((self, pack))

    monkeypatch.setattr(outbox, "_broker", None)
    monkeypatch.setattr(outbox, "get_broker", lambda: Broker(fails=not made))
    # django-q2's async_task pushes to the broker it is given (tests may run tasks inline).
    monkeypatch.setattr(
        outbox, "async_task", lambda path, *args, q_options: q_options["broker"].enqueue(args)
    )
    ids = queued[0][:3]
    Delivery.objects.update(enqueued_until=outbox.enqueued_until())

    outbox.enqueue_batches(model=Delivery, task_path="x.y", ids=ids, batch_size=1)
    assert len(made) == 2  # the first failed, and was replaced once
    assert [broker for broker, _ in pushed] == [made[1], made[1]]
    left_for_relay = Delivery.objects.filter(enqueued_until__isnull=True)
    assert list(left_for_relay.values_list("pk", flat=True)) == ids[:1]
    outbox.enqueue_batches(model=Delivery, task_path="x.y", ids=ids, batch_size=3)
    assert len(made) == 2 and len(pushed) == 3
    workers_probe()  # the dispatcher's own task goes through the same client
    assert len(made) == 2 and pushed[-1][0] is made[1]
