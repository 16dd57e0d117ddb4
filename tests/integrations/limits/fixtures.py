"""Fixtures shared by the limits and delivery tests."""

import pytest

from integrations.limits.stores import RedisStore, limit_store
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
