"""Recovery in seconds through real processes (gunicorn, ``qcluster``, ``dispatch``) on whichever
database and broker the suite runs with: a worker SIGKILLed mid-send, and a broker flushed after
work was queued, each resumed within 15 s (DESIGN.md §5).

The lease is shortened to 3 s; the enqueue timeout keeps its 120 s default, so only the new
mechanisms (lease heartbeat, re-queueing from claim state) can finish the work in time."""

import os
import time

import pytest

from integrations.models import Delivery
from tests.integrations.deliveries.conftest import (
    api_session,
    proceed,
    trello_customer_at,
    wait_finished,
)
from tests.processes import ProcessStack

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

CARDS = "/trello/1/cards/"
REDIS_URL = os.environ.get("REDIS_URL", "")
LEASE = 3
RESUMED_WITHIN = 15


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("recovery")
    stack = ProcessStack.on_test_database(
        workdir,
        SWITCHYARD_HEARTBEAT_SECONDS="1",
        SWITCHYARD_DISPATCH_INTERVAL_SECONDS="0.2",
        SWITCHYARD_LEASE_SECONDS=str(LEASE),
        SWITCHYARD_ENQUEUE_GRACE_SECONDS="2",
        SWITCHYARD_ATTEMPT_DEADLINE_SECONDS="20",
    )
    stack.start_platform()
    yield stack
    stack.stop()


@pytest.fixture
def client_for(stack, fake_provider):
    """An API session for a Trello customer whose integration points at the fake server."""
    trello_customer_at(fake_provider.url)
    session = api_session("recovery")
    yield session
    session.close()


def test_worker_killed_mid_send_is_sent_again_within_15_s(stack, client_for, fake_provider):
    fake_provider.fault(path_prefix=CARDS, latency_ms=15_000, count=1)
    delivery_id = proceed(stack, client_for)
    stack.wait_for(lambda: fake_provider.journal(CARDS), what="the first send")
    # The send outlasts two leases: the worker's heartbeat keeps it, nobody takes it over.
    time.sleep(2 * LEASE)
    assert len(fake_provider.journal(CARDS)) == 1
    assert Delivery.objects.get(pk=delivery_id).status == "in_flight"

    stack.kill("worker")  # SIGKILL to the whole cluster, mid-send: the heartbeat dies with it
    killed_at = time.time()
    stack.start_worker()
    detail = wait_finished(stack, client_for, delivery_id)
    assert detail["status"] == "succeeded", detail
    _killed, second = fake_provider.journal(CARDS)
    assert second["at"] - killed_at < RESUMED_WITHIN, stack.logs()
    # The killed attempt counted (the provider may have seen it) but left no record.
    assert [a["number"] for a in detail["attempts"]] == [2]


def _flush_broker() -> None:
    """Every queued task gone: FLUSHDB on the test's own Redis database (the one REDIS_URL
    names, nothing else), or the ORM broker's rows."""
    if REDIS_URL:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    else:
        from django_q.models import OrmQ

        OrmQ.objects.all().delete()


def test_flushed_broker_is_queued_again_within_15_s(stack, client_for, fake_provider):
    stack.kill("worker")  # nobody consumes: the tasks stay in the broker
    ids = [proceed(stack, client_for) for _ in range(5)]
    # The first ones were queued by the web process at once, the rest by the relay.
    stack.wait_for(
        lambda: not Delivery.objects.filter(pk__in=ids, enqueued_until=None).exists(),
        what="every delivery queued",
    )
    _flush_broker()
    flushed_at = time.time()
    stack.start_worker()
    details = [wait_finished(stack, client_for, delivery_id) for delivery_id in ids]
    assert [d["status"] for d in details] == ["succeeded"] * 5
    sends = fake_provider.journal(CARDS)
    assert len(sends) == 5  # each sent once
    assert max(send["at"] for send in sends) - flushed_at < RESUMED_WITHIN, stack.logs()
    assert [len(d["attempts"]) for d in details] == [1] * 5
