"""Fixtures shared by the limits and delivery tests."""

import os
import time

import pytest

from integrations.limits.stores import DatabaseStore, RedisStore, limit_store
from integrations.models import CircuitBreaker, RateLimitWindow


def clear_limit_state(store=None) -> None:
    """Forget every rate-limit window, cool-down and breaker of ``store`` (the process's by
    default): its Redis keys, or its rows."""
    store = store or limit_store()
    if isinstance(store, RedisStore):
        for key in store.redis.scan_iter(f"{store.prefix}*", count=1000):
            store.redis.delete(key)
    else:
        RateLimitWindow.objects.all().delete()
        CircuitBreaker.objects.all().delete()


@pytest.fixture(autouse=True)
def fresh_limits():
    """Start with no rate-limit windows, cool-downs or breakers in Redis, whose keys outlive a
    test's database transaction (database rows roll back by themselves)."""
    if isinstance(limit_store(), RedisStore):
        clear_limit_state()
    yield


@pytest.fixture(params=["database", "redis"])
def store(request):
    """Each limit store in turn: the database's, and Redis's (skipped without REDIS_URL; CI's
    second run sets it), emptied before and after."""
    if request.param == "database":
        yield DatabaseStore()
        return
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        pytest.skip("REDIS_URL is not set")
    redis_store = RedisStore(redis_url)
    clear_limit_state(redis_store)
    yield redis_store
    clear_limit_state(redis_store)


def breaker_opened(provider_key: str, region: str, *, cool_off: float = 300.0) -> CircuitBreaker:
    """The breaker of ``provider_key``/``region`` opened through the store in use (Redis keeps
    its state in Redis: a row written by hand would be overruled), as three failing
    deliveries open it; its mirrored row."""
    store = limit_store()
    for delivery_id in (1, 2, 3):
        store.breaker_record(
            provider_key,
            region,
            ok=False,
            delivery_id=delivery_id,
            threshold=3,
            cool_off=cool_off,
            now=time.time(),
        )
    return CircuitBreaker.objects.get(provider_key=provider_key, region=region)
