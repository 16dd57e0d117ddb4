"""Deliveries through real processes: gunicorn, ``qcluster`` and ``dispatch`` against the fake
provider server, on whichever database and broker the suite runs with (SQLite + ORM broker, or
PostgreSQL + Redis). The test process only prepares rows and talks HTTP."""

import os
import time
from datetime import UTC, datetime

import pytest

from integrations.models import Delivery
from tests.integrations.deliveries.conftest import (
    CARD,
    STAGES,
    api_session,
    proceed,
    trello_customer_at,
    wait_finished,
)
from tests.processes import ProcessStack, free_port

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    stack = ProcessStack.on_test_database(
        workdir,
        SWITCHYARD_HEARTBEAT_SECONDS="1",
        SWITCHYARD_DISPATCH_INTERVAL_SECONDS="0.2",
        SWITCHYARD_LEASE_SECONDS="6",
        SWITCHYARD_ATTEMPT_DEADLINE_SECONDS="5",
        SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS="3",
    )
    stack.start_platform()
    yield stack
    stack.stop()


@pytest.fixture
def client_for(stack, fake_provider):
    """An API session for a Trello customer whose integration points at the fake server."""
    trello_customer_at(
        fake_provider.url, retry={"base_seconds": 0.5, "cap_seconds": 2, "max_attempts": 6}
    )
    session = api_session("e2e")
    yield session
    session.close()


def test_workflow_proceed_succeeds_through_real_processes(stack, client_for, fake_provider):
    detail = wait_finished(stack, client_for, proceed(stack, client_for))
    assert detail["status"] == "succeeded", detail
    assert detail["result"] == {"item": CARD, "stage": "done"}  # stage names, never list ids
    [sent] = fake_provider.journal("/trello/1/cards/")
    assert sent["method"] == "PUT"
    assert sent["path"] == f"/trello/1/cards/{CARD}"
    assert STAGES["done"] in sent["body"]
    assert detail["attempts"][0]["credential_version"] == 1


def test_500_three_times_then_success_on_attempt_four(stack, client_for, fake_provider):
    fake_provider.fault(path_prefix="/trello/1/cards/", status=500, count=3)
    detail = wait_finished(stack, client_for, proceed(stack, client_for))
    assert detail["status"] == "succeeded", detail
    attempts = detail["attempts"]
    assert [a["response_status"] for a in attempts] == [500, 500, 500, 200]
    arrivals = [r["at"] for r in fake_provider.journal("/trello/1/cards/")]
    assert len(arrivals) == 4
    for n in range(3):
        # Each retry waited at least the delay the policy chose (visible in the attempt log).
        assert arrivals[n + 1] - arrivals[n] >= attempts[n]["next_delay_seconds"] - 0.05


def test_400_dead_letters_at_once_and_api_retry_succeeds(stack, client_for, fake_provider):
    fake_provider.fault(path_prefix="/trello/1/cards/", status=400, count=1)
    delivery_id = proceed(stack, client_for)
    detail = wait_finished(stack, client_for, delivery_id)
    assert (detail["status"], detail["dead_reason"]) == ("dead", "non_retryable")
    assert len(detail["attempts"]) == 1
    dead = client_for.get(f"{stack.web_url}/api/v1/dead-letters/", timeout=10).json()["results"]
    assert [d["id"] for d in dead] == [delivery_id]
    retried = client_for.post(f"{stack.web_url}/api/v1/deliveries/{delivery_id}/retry/", timeout=10)
    assert retried.status_code == 202
    detail = wait_finished(stack, client_for, delivery_id)
    assert detail["status"] == "succeeded"
    assert [a["trigger"] for a in detail["attempts"]] == ["auto", "manual"]


def test_a_scheduled_delivery_arrives_within_about_a_second_of_its_time(
    stack, client_for, fake_provider
):
    when = time.time() + 2
    body = {
        "customer": "acme",
        "action": "workflow.proceed",
        "input": {"item": CARD, "to": "done"},
        "not_before": datetime.fromtimestamp(when, UTC).isoformat(),
    }
    response = client_for.post(f"{stack.web_url}/api/v1/deliveries/", json=body, timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    detail = wait_finished(stack, client_for, response.json()["id"])
    assert detail["status"] == "succeeded", detail
    [sent] = fake_provider.journal("/trello/1/cards/")
    assert when - 0.05 <= sent["at"] <= when + 1.5, sent["at"] - when


def test_a_batch_is_delivered_item_by_item(stack, client_for, fake_provider):
    items = [
        {"customer": "acme", "action": "workflow.proceed", "input": {"item": CARD, "to": stage}}
        for stage in ("review", "done", "review")
    ]
    response = client_for.post(
        f"{stack.web_url}/api/v1/deliveries/batch/", json={"items": items}, timeout=10
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202, 202, 202]
    details = [wait_finished(stack, client_for, r["id"]) for r in results]
    assert [d["status"] for d in details] == ["succeeded"] * 3
    assert len(fake_provider.journal("/trello/1/cards/")) == 3


def test_killed_worker_mid_send_completes_after_the_lease(stack, client_for, fake_provider):
    fake_provider.fault(path_prefix="/trello/1/cards/", latency_ms=3000, count=1)
    delivery_id = proceed(stack, client_for)
    stack.wait_for(lambda: fake_provider.journal("/trello/1/cards/"), what="the first send")
    stack.kill("worker")  # SIGKILL to the whole cluster, mid-send
    assert Delivery.objects.get(pk=delivery_id).status == "in_flight"
    stack.start_worker()
    detail = wait_finished(stack, client_for, delivery_id, timeout=40)
    assert detail["status"] == "succeeded", detail
    assert len(fake_provider.journal("/trello/1/cards/")) == 2
    # The killed attempt counted (the provider may have seen it) but left no record.
    assert [a["number"] for a in detail["attempts"]] == [2]


def _flush_broker() -> None:
    if REDIS_URL:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    else:
        from django_q.models import OrmQ

        OrmQ.objects.all().delete()


def test_flushed_broker_loses_nothing(stack, client_for, fake_provider):
    stack.kill("worker")
    ids = [proceed(stack, client_for) for _ in range(5)]
    _flush_broker()
    stack.start_worker()
    details = [wait_finished(stack, client_for, delivery_id) for delivery_id in ids]
    assert [d["status"] for d in details] == ["succeeded"] * 5
    assert len(fake_provider.journal("/trello/1/cards/")) == 5


@pytest.mark.skipif(not REDIS_URL, reason="the ORM broker is the database itself")
def test_broker_down_at_accept_time_still_completes(stack, client_for, fake_provider, tmp_path):
    """A web process whose broker is unreachable still answers 202; the dispatcher, which
    reaches the broker, queues the delivery."""
    down = ProcessStack(tmp_path, {**stack.env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    url = down.start_web(free_port(), workers=1)
    try:
        response = client_for.post(
            f"{url}/api/v1/deliveries/",
            json={
                "customer": "acme",
                "action": "workflow.proceed",
                "input": {"item": CARD, "to": "done"},
            },
            timeout=30,
        )
        assert response.status_code == 202, response.text
        detail = wait_finished(stack, client_for, response.json()["id"])
        assert detail["status"] == "succeeded"
    finally:
        down.stop()
