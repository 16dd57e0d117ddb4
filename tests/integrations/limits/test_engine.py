"""The delivery engine under limits, in process: deferrals cost no attempt, a 429 cools the
credential down, an open breaker holds sends back, the relay takes customers in turn, and the
pooled session keeps to its deadline. The provider is mocked with ``responses``."""

import socket
import threading
import time

import pytest
import requests
import responses
from django.utils import timezone

from customers.models import Customer
from integrations.deliveries import services
from integrations.deliveries.services import attempt as attempt_module
from integrations.egress import EgressRefused, session_for
from integrations.limits.services import rate_limit_quotas
from integrations.limits.stores import limit_store
from integrations.models import CircuitBreaker, Delivery
from integrations.outbox import Outbox
from integrations.outbox import broker as outbox_broker
from tests.integrations.deliveries.backlog import deliveries_bulk
from tests.integrations.deliveries.conftest import CARD, CARD_URL, LIST

pytestmark = pytest.mark.django_db

CARD_JSON = {"id": CARD, "idList": LIST, "idBoard": "5abbe4b7ddc1b351ef961416"}


def create(customer="acme", n=0):
    delivery, _ = services.delivery_create(
        api_key=None,
        customer=customer,
        action="trello.move_card",
        input={"card_id": CARD, "list_id": f"{n:024x}"},
    )
    return delivery


def attempt(delivery):
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    return services.deliveries_attempt(delivery_ids=[delivery.pk]).get(delivery.pk)


def quotas_of(credential, customer):
    return rate_limit_quotas(
        provider_key="trello",
        config={},
        customer_id=customer.pk,
        credential_id=credential.pk,
        credential_fields={"api_key": "x"},
    )


@responses.activate
def test_no_capacity_defers_without_an_attempt(trello_credential, acme):
    responses.put(CARD_URL, json=CARD_JSON)
    [token_quota, _] = quotas = quotas_of(trello_credential, acme)
    for _ in range(token_quota.rate):  # someone else used the credential's whole window
        admission = limit_store().admit(
            quotas, customer="other", now=time.time(), breaker=("trello", "eu"), probe_lease=10.0
        )
        assert admission.wait is None
    delivery = create()
    assert attempt(delivery) == Delivery.Status.PENDING
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.attempt_log.count(), len(responses.calls)) == (0, 0, 0)
    assert delivery.next_attempt_at > timezone.now() + timezone.timedelta(seconds=5)
    assert delivery.last_error.startswith("Deferred")


def test_trello_counts_per_token_and_per_shared_api_key(trello_credential, acme):
    token, key = quotas_of(trello_credential, acme)
    assert (token.key, token.rate) == (f"trello:credential:{trello_credential.pk}", 100)
    assert key.key.startswith("trello:api_key:") and key.rate == 300 and "x" not in key.key


def test_integration_overrides_the_rate_limit(trello_credential, acme):
    [token] = rate_limit_quotas(
        provider_key="trello",
        config={"rate_limit": {"rate": 7, "per_seconds": 2}},
        customer_id=acme.pk,
        credential_id=trello_credential.pk,
        credential_fields={},
    )
    assert (token.rate, token.window) == (7, pytest.approx(2.2))


@responses.activate
def test_a_429_defers_the_other_deliveries_on_the_credential(trello_credential):
    responses.put(CARD_URL, status=429, headers={"Retry-After": "5"}, json={})
    first, second = create(n=1), create(n=2)
    assert attempt(first) == Delivery.Status.PENDING
    assert attempt(second) == Delivery.Status.PENDING
    second.refresh_from_db()
    assert len(responses.calls) == 1  # the second never reached the provider
    assert second.attempts == 0
    wait = (second.next_attempt_at - timezone.now()).total_seconds()
    assert 4 < wait <= 5.1


@responses.activate
def test_a_retry_after_of_a_day_cools_the_credential_down_for_an_hour_at_most(trello_credential):
    """Clamped as the retry policy clamps it: the cool-down holds every send on the credential,
    and a bogus Retry-After of 86400 held them all for a day."""
    responses.put(CARD_URL, status=429, headers={"Retry-After": "86400"}, json={})
    first, second = create(n=1), create(n=2)
    assert attempt(first) == Delivery.Status.PENDING
    assert attempt(second) == Delivery.Status.PENDING
    second.refresh_from_db()
    assert (len(responses.calls), second.attempts) == (1, 0)
    wait = (second.next_attempt_at - timezone.now()).total_seconds()
    assert 3500 < wait <= 3600.5


@responses.activate
def test_open_breaker_holds_sends_back_without_attempts(trello_credential, settings):
    settings.SWITCHYARD_BREAKER_FAILURES = 3
    responses.put(CARD_URL, status=503, body="down")
    failing = [create(n=n) for n in range(3)]
    for delivery in failing:
        attempt(delivery)
    assert CircuitBreaker.objects.get(provider_key="trello", region="eu").state == "open"
    held = create(n=9)
    assert attempt(held) == Delivery.Status.PENDING
    held.refresh_from_db()
    assert (held.attempts, len(responses.calls)) == (0, 3)
    assert "circuit breaker" in held.last_error


@responses.activate
def test_a_batch_shares_one_credential_lookup_and_settles_each(trello_credential):
    responses.put(CARD_URL, json=CARD_JSON)
    ids = [create(n=n).pk for n in range(5)]
    results = services.deliveries_attempt(delivery_ids=[*ids, 999_999])
    assert results == dict.fromkeys(ids, Delivery.Status.SUCCEEDED)
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_a_batch_out_of_time_hands_the_rest_back(trello_credential, settings):
    settings.SWITCHYARD_SEND_BATCH_SECONDS = -1
    delivery = create()
    assert services.deliveries_attempt(delivery_ids=[delivery.pk]) == {}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.enqueued_until) == ("pending", 0, None)


# -- fairness ----------------------------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch):
    ids = []
    monkeypatch.setattr(Outbox, "enqueue", lambda _self, chunk: ids.extend(chunk))
    return ids


def test_relay_takes_customers_in_turn_within_their_cap(acme, globex, settings, enqueued):
    settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT = 5
    noisy = [create(n=n).pk for n in range(20)]
    quiet = create("globex").pk
    Delivery.objects.update(enqueued_until=None)
    enqueued.clear()
    assert services.deliveries_relay_due() == 6
    assert enqueued[:2] == [noisy[0], quiet]  # round robin: the quiet one is not last in line
    assert services.deliveries_relay_due() == 0  # the noisy customer is at its cap


def test_a_few_due_rows_are_spread_over_the_workers_and_a_backlog_goes_in_full_batches(
    acme, settings, monkeypatch
):
    """Five due rows and two workers: tasks of 3 and 2, not one task of 5 that one worker sends
    in turn while the other idles. A backlog still travels SWITCHYARD_SEND_BATCH to a task."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    settings.SWITCHYARD_SEND_BATCH = 50
    tasks = []
    monkeypatch.setattr(outbox_broker, "async_task", lambda _path, ids, **_: tasks.append(ids))
    for n in range(5):
        create(n=n)
    Delivery.objects.update(enqueued_until=None)
    tasks.clear()
    assert services.deliveries_relay_due() == 5
    assert [len(ids) for ids in tasks] == [3, 2]
    Delivery.objects.update(status=Delivery.Status.SUCCEEDED)
    deliveries_bulk(acme, 120)
    tasks.clear()
    assert services.deliveries_relay_due() == 120
    assert [len(ids) for ids in tasks] == [50, 50, 20]


def test_a_burst_beyond_the_cap_is_left_to_the_relay(acme, settings, enqueued):
    settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT = 2
    created = [create(n=n) for n in range(4)]
    queued = [d.enqueued_until is not None for d in created]
    assert queued == [True, True, False, False]


# -- breakers in the admin and the API ---------------------------------------------------------


def open_breaker():
    return CircuitBreaker.objects.create(
        provider_key="miro",
        region="us",
        state="open",
        failing_deliveries=[4, 5, 6],
        opened_at=timezone.now(),
        open_until=timezone.now() + timezone.timedelta(seconds=30),
        last_error="HTTP 502: Bad Gateway",
    )


def test_breakers_api(api):
    open_breaker()
    [breaker] = api.get("/api/v1/breakers/").json()["results"]
    assert breaker["provider"] == "miro" and breaker["state"] == "open"
    assert (breaker["failure_count"], breaker["probe_due"]) == (3, False)


def test_breakers_admin_is_read_only(admin_client):
    breaker = open_breaker()
    html = admin_client.get("/admin/integrations/circuitbreaker/").content.decode()
    assert "miro" in html and "HTTP 502" in html
    assert admin_client.get("/admin/integrations/circuitbreaker/add/").status_code == 403
    detail = admin_client.get(f"/admin/integrations/circuitbreaker/{breaker.pk}/change/")
    assert detail.status_code == 200 and 'name="state"' not in detail.content.decode()


# -- HTTP client -------------------------------------------------------------------------------


@pytest.fixture
def dripping_server():
    """Answers headers at once, then one body byte every 0.2 s: never slow enough for a read
    timeout, far too slow for the deadline."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"x")
            except OSError:
                break
            time.sleep(0.2)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    server.close()


@pytest.mark.parametrize("stream", [False, True])
def test_the_deadline_bounds_a_slow_drip(dripping_server, settings, stream):
    """A caller asking to stream is held to the deadline and the cap all the same."""
    settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS = 1
    session = session_for("http")
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(dripping_server, timeout=(1, 10), stream=stream)  # no read waits 10 s
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, (3.05, 27.0)),
        ({"timeouts": {"read_seconds": 5}}, (3.05, 5.0)),
        ({"timeouts": {"connect_seconds": 1, "read_seconds": 90}}, (1.0, 30.0)),
    ],
)
def test_timeouts_per_provider_with_integration_overrides(acme, config, expected):
    from integrations.services import integration_create

    integration = integration_create(
        customer=acme, provider_key="http", config={"base_url": "http://x.test", **config}
    )
    delivery = Delivery(provider_key="http", integration=integration)
    assert attempt_module._attempt_timeout(delivery) == expected  # capped by the 30 s deadline


def test_one_session_per_provider_with_a_user_agent():
    assert session_for("trello") is session_for("trello")
    assert session_for("trello") is not session_for("miro")
    assert session_for("trello").headers["User-Agent"].startswith("Switchyard/")


def test_pooled_session_reads_normal_answers(fake_provider):
    response = session_for("http").post(f"{fake_provider.url}/http/x", json={}, timeout=(1, 5))
    assert response.status_code == 200 and response.json()["ok"] is True
    assert Customer.objects.count() == 0


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_pooled_session_does_not_even_connect_to_a_refused_peer(scheme, settings):
    settings.SWITCHYARD_EGRESS_ALLOW = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/hook"
        session = session_for("standard_webhooks")
        with pytest.raises(EgressRefused, match="a loopback address"):
            session.post(url, data=b"secret payload", timeout=2)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # no handshake ever happened
