"""API quotas: requests per minute per API key, and per customer a request names (``customer``
in the query or the JSON body), so one busy app or tenant cannot take the API from the others.
Over a quota the answer is a 429 problem with ``Retry-After``.

Counted in fixed one-minute windows in the shared cache: one round trip per request (a
pipeline on Redis; the in-process cache otherwise). A cache that cannot be reached limits
nothing: the API must not fail with it."""

import logging
import re
import time
from collections.abc import Mapping

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import exceptions, throttling

from customers.selectors import customer_by_slug

__all__ = ("ApiQuotaThrottle",)

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")


class ApiQuotaThrottle(throttling.BaseThrottle):
    def allow_request(self, request, view) -> bool:
        api_key = request.auth
        if api_key is None:  # unauthenticated views (schema, docs)
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        quotas = _quotas(request, api_key, window)
        if not quotas:
            return True
        counts = _count([key for key, _, _ in quotas])
        if counts is None:
            return True
        for (_, limit, whose), count in zip(quotas, counts, strict=True):
            if count > limit:
                raise exceptions.Throttled(
                    wait=(window + 1) * WINDOW_SECONDS - now,
                    detail=f"{whose} has used its quota of {limit} API requests per minute.",
                )
        return True


def _quotas(request, api_key, window: int) -> list[tuple[str, int, str]]:
    """(cache key, limit, whose quota) for each quota the request counts against."""
    quotas = []
    per_key = settings.SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_KEY
    if per_key:
        # The prefix, not the id: a test database reuses ids, a new key never reuses a prefix.
        quotas.append((f"switchyard:quota:key:{api_key.prefix}:{window}", per_key, "This API key"))
    per_customer = settings.SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_CUSTOMER
    if per_customer and (slug := _customer_named(request, api_key)):
        key = f"switchyard:quota:customer:{slug}:{window}"
        quotas.append((key, per_customer, f"Customer '{slug}'"))
    return quotas


def _customer_named(request, api_key) -> str | None:
    """The customer the request acts for, if it names one this key may act for: a key limited
    to its customers must not use up another customer's quota by naming it."""
    slug = request.query_params.get("customer")
    if slug is None and isinstance(request.data, Mapping):
        slug = request.data.get("customer")
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        return None
    if api_key.customer_limited and customer_by_slug(api_key=api_key, slug=slug) is None:
        return None
    return slug


def _count(keys: list[str]) -> list[int] | None:
    """This request counted in each key's window: the new counts, or None without a cache."""
    try:
        cache = caches["default"]
        if isinstance(cache, RedisCache):
            # Django's incr() costs two round trips (EXISTS, INCRBY) per key and needs an add()
            # first; INCR and EXPIRE in one pipeline are one round trip for all keys.
            pipeline = cache._cache.get_client(write=True).pipeline(transaction=False)
            for key in keys:
                full_key = cache.make_and_validate_key(key)
                pipeline.incr(full_key)
                pipeline.expire(full_key, WINDOW_SECONDS + 5)
            return pipeline.execute()[::2]
        counts = []
        for key in keys:
            cache.add(key, 0, WINDOW_SECONDS + 5)
            counts.append(cache.incr(key))
        return counts
    except Exception:
        logger.warning("api.quota_unavailable", exc_info=True)
        return None
