"""Shared state of rate limits, cool-downs and circuit breakers: Redis when ``REDIS_URL`` is set,
the database otherwise. Both give the same answers (tests/integrations/limits run each case on
both); every decision is one atomic step (a Lua script, or a transaction holding row locks), so
any number of worker processes on any number of machines share one limit.

Times are epoch seconds passed in by the caller, so the boundary tests can use a made-up clock.
Hosts must keep their clocks in sync (NTP), as they already must for ``next_attempt_at``."""

from functools import cache

from django.conf import settings

from integrations.limits.stores.base import Admission, LimitStore, Quota
from integrations.limits.stores.database_store import DatabaseStore
from integrations.limits.stores.redis_store import RedisStore

__all__ = (
    "Admission",
    "DatabaseStore",
    "LimitStore",
    "Quota",
    "RedisStore",
    "limit_store",
)


@cache
def limit_store() -> LimitStore:
    """The process's store: Redis when configured, else the database."""
    if settings.REDIS_URL:
        return RedisStore(settings.REDIS_URL)
    return DatabaseStore()
