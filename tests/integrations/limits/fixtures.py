"""Fixtures shared by the limits and delivery tests."""

import pytest

from integrations.limits.stores import RedisStore, limit_store


@pytest.fixture(autouse=True)
def fresh_limits():
    """Start with no rate-limit windows, cool-downs or breakers in Redis, whose keys outlive a
    test's database transaction (database rows roll back by themselves)."""
    store = limit_store()
    if isinstance(store, RedisStore):
        store.reset()
    yield
