"""Limits through real processes: gunicorn, a two-worker ``qcluster`` and ``dispatch`` against the
fake provider server, on the suite's database and broker (SQLite + ORM broker, or PostgreSQL +
Redis, where the limiter state lives in Redis too)."""

import time

import pytest
import requests
from django.utils import timezone

from customers.models import Customer, Region
from customers.services import api_key_create
from integrations.models import CircuitBreaker, Delivery, DeliveryAttempt
from integrations.services import integration_create
from tests.processes import ProcessStack

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

CARDS = "/trello/1/cards/"
LIST = "5abbe4b7ddc1b351ef9614a2"
COOL_OFF = 3.0


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("limits")
    stack = ProcessStack.on_test_database(
        workdir,
        SWITCHYARD_WORKERS="2",
        SWITCHYARD_DISPATCH_INTERVAL_SECONDS="0.1",
        SWITCHYARD_LEASE_SECONDS="6",
        SWITCHYARD_ATTEMPT_DEADLINE_SECONDS="3",
        SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS="5",
        SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS="0.1",
        SWITCHYARD_BREAKER_FAILURES="3",
        SWITCHYARD_BREAKER_COOL_OFF_SECONDS=str(COOL_OFF),
        SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT="40",
        SWITCHYARD_SEND_BATCH="10",
    )
    stack.start_platform()
    yield stack
    stack.stop()


@pytest.fixture
def region(db):
    return Region.objects.create(code="eu", name="EU")


@pytest.fixture
def trello_customer(region, fake_provider):
    """Make a customer whose Trello integration points at the fake server; ``shared`` uses the
    region-wide credential instead of one of its own."""
    from credentials.services import credential_create

    def make(slug, *, rate_limit=None, shared=False, token="b" * 64):
        customer = Customer.objects.create(slug=slug, name=slug, region=region)
        if not shared:
            credential_create(
                provider="trello",
                purpose="api",
                customer=customer,
                fields={"api_key": "a" * 32, "token": token},
            )
        config = {
            "base_url": f"{fake_provider.url}/trello",
            "retry": {"base_seconds": 0.2, "cap_seconds": 0.5, "max_attempts": 10},
        }
        if rate_limit:
            config["rate_limit"] = rate_limit
        # A region-wide credential goes only to Trello's own hosts or a trusted base_url.
        integration_create(customer=customer, provider_key="trello", config=config, trusted=shared)
        return customer

    return make


@pytest.fixture
def shared_credential(region):
    from credentials.services import credential_create

    return credential_create(
        provider="trello",
        purpose="api",
        region=region,
        fields={"api_key": "c" * 32, "token": "d" * 64},
    )


def burst(customer, n) -> list[int]:
    """``n`` due deliveries written straight to the outbox, as a burst of API calls leaves them
    for the relay once the customer's in-flight cap is reached. Their cards are named after the
    customer (see ``sent_by``)."""
    now = timezone.now()
    rows = Delivery.objects.bulk_create(
        Delivery(
            customer=customer,
            action="trello.move_card",
            provider_key="trello",
            operation="move_card",
            integration=customer.integrations.get(),
            input={"card_id": f"{customer.slug}{i:05d}", "list_id": LIST},
            attempt_limit=10,
            next_attempt_at=now,
        )
        for i in range(n)
    )
    return [row.pk for row in rows]


def sent_by(fake_provider, customer) -> list[dict]:
    """The fake provider's journal of ``customer``'s cards only: a send of an earlier test's
    backlog still in flight when that test ended must not count in the next one."""
    return fake_provider.journal(f"{CARDS}{customer.slug}0")


def wait_all_finished(stack, ids, timeout) -> None:
    def finished():
        return not Delivery.objects.filter(pk__in=ids, finished_at__isnull=True).exists()

    stack.wait_for(finished, what=f"{len(ids)} deliveries to finish", timeout=timeout)


def assert_all_succeeded(ids) -> None:
    statuses = set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses == {"succeeded"}


def test_rate_limit_holds_across_two_workers(stack, trello_customer, fake_provider):
    fake_provider.limit(path_prefix=CARDS, rate=10, per_seconds=1)
    customer = trello_customer("acme", rate_limit={"rate": 10, "per_seconds": 1})
    ids = burst(customer, 200)
    wait_all_finished(stack, ids, timeout=60)
    assert_all_succeeded(ids)
    sent = sent_by(fake_provider, customer)
    assert len(sent) == 200
    assert {entry["status"] for entry in sent} == {200}  # the provider never had to say 429
    arrivals = sorted(entry["at"] for entry in sent)
    for start in arrivals:
        assert sum(start <= at < start + 1.0 for at in arrivals) <= 10
    # Waiting for capacity cost no attempts: one attempt each.
    assert DeliveryAttempt.objects.filter(delivery__in=ids).count() == 200


def test_a_429_cools_the_credential_down(stack, trello_customer, fake_provider):
    fake_provider.fault(path_prefix=CARDS, status=429, retry_after=5, count=1)
    customer = trello_customer("acme")
    ids = burst(customer, 20)
    wait_all_finished(stack, ids, timeout=30)
    assert_all_succeeded(ids)
    sent = sorted(sent_by(fake_provider, customer), key=lambda entry: entry["at"])
    [limited] = [entry for entry in sent if entry["status"] == 429]
    # A send already on the wire when the 429 came back may land just after it; then nothing
    # with that credential until the provider's 5 s are over.
    early = [e for e in sent if limited["at"] + 0.3 < e["at"] < limited["at"] + 5]
    assert early == []
    assert len(sent) == 21
    assert DeliveryAttempt.objects.filter(delivery__in=ids).count() == 21


def test_breaker_opens_holds_off_and_closes_after_a_probe(stack, trello_customer, fake_provider):
    fake_provider.fault(path_prefix=CARDS, status=503)
    customer = trello_customer("acme")
    ids = burst(customer, 8)

    def opened():
        return CircuitBreaker.objects.filter(state="open").first()

    stack.wait_for(opened, what="the breaker to open", timeout=20)
    breaker = opened()
    fake_provider.reset()  # the provider recovers
    wait_all_finished(stack, ids, timeout=30)
    assert_all_succeeded(ids)
    assert CircuitBreaker.objects.get().state == "closed"
    # Nothing reached the provider before the cool-off was over; the first send is the probe.
    first = min(entry["at"] for entry in sent_by(fake_provider, customer))
    assert first >= breaker.open_until.timestamp() - 0.05
    # While open, deliveries were deferred without attempts (beyond any already in flight).
    held = DeliveryAttempt.objects.filter(
        delivery__in=ids,
        started_at__gt=breaker.opened_at + timezone.timedelta(seconds=0.5),
        started_at__lt=breaker.open_until,
    )
    assert not held.exists()
    assert Delivery.objects.filter(pk__in=ids, attempts__gt=4).count() == 0


def test_one_customers_burst_does_not_hold_up_another(
    stack, trello_customer, shared_credential, fake_provider
):
    limit = {"rate": 20, "per_seconds": 1}
    noisy = trello_customer("noisy", rate_limit=limit, shared=True)
    trello_customer("quiet", rate_limit=limit, shared=True)
    backlog = burst(noisy, 300)  # 15 s of sends at the shared key's rate
    stack.wait_for(
        lambda: Delivery.objects.filter(pk__in=backlog, status="succeeded").count() >= 20,
        what="the burst to be under way",
    )
    _, raw_key = api_key_create(name="quiet-app")
    accepted = time.time()
    response = requests.post(
        f"{stack.web_url}/api/v1/deliveries/",
        json={
            "customer": "quiet",
            "action": "trello.move_card",
            "input": {"card_id": "quietcard", "list_id": LIST},
        },
        headers={"Authorization": f"Bearer {raw_key}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    wait_all_finished(stack, [response.json()["id"]], timeout=20)
    [quiet] = [e for e in fake_provider.journal(CARDS) if e["path"].endswith("/quietcard")]
    assert quiet["status"] == 200
    # "No more than a few seconds" (issue 6). Usually under one; on a loaded 2-core machine the
    # quiet delivery can lose the freed slot to the burst once or twice, so 3 s was flaky.
    delay = quiet["at"] - accepted
    assert delay < 5.0, f"the quiet customer's delivery took {delay:.2f} s"
    # It went ahead of most of the burst, which was still waiting for the shared key.
    assert Delivery.objects.filter(pk__in=backlog, status="pending").count() > 100
    Delivery.objects.filter(pk__in=backlog, status="pending").update(status="cancelled")


def test_connections_are_reused(stack, trello_customer, fake_provider):
    customer = trello_customer("acme")
    ids = burst(customer, 60)
    wait_all_finished(stack, ids, timeout=30)
    sent = sent_by(fake_provider, customer)
    assert len(sent) == 60
    # One pooled connection per worker process, not one per request.
    assert len({entry["connection"] for entry in sent}) <= 4
