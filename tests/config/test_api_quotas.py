"""API quotas per key and per customer (config/api/quotas.py): 429 problems with Retry-After,
counted in the shared cache (Redis in the PostgreSQL + Redis phase), failing open."""

import uuid

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.test import APIClient

from customers.models import Customer
from customers.services import api_key_create

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _client(**key) -> APIClient:
    _, raw = api_key_create(name="quota-test", **key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def quotas(settings):
    def set_quotas(*, per_key: int, per_customer: int):
        settings.SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_KEY = per_key
        settings.SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_CUSTOMER = per_customer

    return set_quotas


@pytest.fixture
def customer(region_eu):
    """A customer of its own: counters in Redis outlive each test's transaction."""
    return Customer.objects.create(slug=f"q-{uuid.uuid4().hex[:12]}", name="Q", region=region_eu)


def _throttled(response, whose: str):
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == PROBLEM
    assert 1 <= int(response["Retry-After"]) <= 60
    problem = response.json()
    assert problem["type"].endswith("/throttled")
    assert whose in problem["detail"]


def test_a_key_over_its_quota_gets_429_with_retry_after(quotas, acme):
    quotas(per_key=3, per_customer=0)
    busy, other = _client(scope="admin"), _client()
    assert [busy.get("/api/v1/regions/").status_code for _ in range(3)] == [200] * 3
    _throttled(busy.get("/api/v1/regions/"), "This API key")
    _throttled(busy.post("/api/v1/regions/", {"code": "xx", "name": "X"}, format="json"), "key")
    assert other.get("/api/v1/regions/").status_code == 200


def test_requests_naming_a_customer_count_against_its_quota(quotas, customer, globex):
    quotas(per_key=0, per_customer=2)
    first, second = _client(), _client()
    assert first.get(f"/api/v1/integrations/?customer={customer.slug}").status_code == 200
    body = {"customer": customer.slug, "action": "trello.move_card", "input": {}}
    assert first.post("/api/v1/actions/validate/", body, format="json").status_code == 400
    # Another key, the same customer: over its quota.
    _throttled(second.get(f"/api/v1/deliveries/?customer={customer.slug}"), customer.slug)
    # Requests naming another customer, or none, are not held back.
    assert second.get("/api/v1/integrations/?customer=globex").status_code == 200
    assert second.get("/api/v1/integrations/").status_code == 200


def test_a_limited_key_cannot_use_up_the_quota_of_a_customer_it_may_not_see(quotas, customer, acme):
    quotas(per_key=0, per_customer=1)
    foreign = _client(customers=[acme])
    for _ in range(3):
        assert foreign.get(f"/api/v1/integrations/?customer={customer.slug}").status_code == 200
    assert _client().get(f"/api/v1/integrations/?customer={customer.slug}").status_code == 200


def test_zero_turns_a_quota_off(quotas, customer):
    quotas(per_key=0, per_customer=0)
    client = _client()
    for _ in range(20):
        assert client.get(f"/api/v1/integrations/?customer={customer.slug}").status_code == 200


class _Unreachable:
    def __getitem__(self, alias):
        raise ConnectionError("cache down")


def test_an_unreachable_cache_limits_nothing(quotas, monkeypatch, customer):
    quotas(per_key=1, per_customer=1)
    monkeypatch.setattr("config.api.quotas.caches", _Unreachable())
    client = _client()
    for _ in range(3):
        assert client.get(f"/api/v1/integrations/?customer={customer.slug}").status_code == 200


def _round_trips(monkeypatch) -> list[str]:
    """Every command sent to Redis on its own, and every pipeline (one round trip each)."""
    trips = []
    send, send_pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute

    def execute_command(client, *args, **options):
        trips.append(str(args[0]))
        return send(client, *args, **options)

    def execute(pipeline, *args, **kwargs):
        trips.append("pipeline")
        return send_pipeline(pipeline, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "execute_command", execute_command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    return trips


def test_the_quotas_cost_one_round_trip_to_redis(quotas, customer, monkeypatch):
    """Both counters, the key's and the customer's, in one pipeline."""
    if not isinstance(caches["default"], RedisCache):
        pytest.skip("REDIS_URL is not set: the in-process cache makes no round trips")
    client, url = _client(), f"/api/v1/integrations/?customer={customer.slug}"
    trips = _round_trips(monkeypatch)
    quotas(per_key=0, per_customer=0)
    assert client.get(url).status_code == 200
    without = list(trips)
    trips.clear()
    quotas(per_key=100, per_customer=100)
    assert client.get(url).status_code == 200
    # The address was checked for failed authentications (a GET) on the first request and is
    # remembered as unblocked for a second: this one makes the quotas' pipeline and nothing else.
    assert without == ["GET"]
    assert trips == ["pipeline"]


def _items(customer, count: int) -> list[dict]:
    return [{"customer": customer.slug, "action": "trello.nope", "input": {}}] * count


def test_a_batch_counts_one_call_per_item(quotas, customer, globex):
    """Against the key's quota and each named customer's: a batch is no way around either."""
    quotas(per_key=0, per_customer=5)
    limited = _client(customers=[customer])
    batch = "/api/v1/deliveries/batch/"
    assert limited.post(batch, {"items": _items(customer, 4)}, format="json").status_code == 200
    _throttled(limited.post(batch, {"items": _items(customer, 2)}, format="json"), customer.slug)
    # Items naming a customer the key may not see use up nobody's quota (they are refused).
    other = _items(globex, 50)
    assert limited.post(batch, {"items": other}, format="json").status_code == 200
    quotas(per_key=3, per_customer=0)
    fresh = _client()
    _throttled(fresh.post(batch, {"items": _items(globex, 4)}, format="json"), "This API key")
