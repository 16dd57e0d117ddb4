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

from customers.selectors import customer_by_slug, customers_visible_to

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
        counts = _count([(key, calls) for key, _, _, calls in quotas])
        if counts is None:
            return True
        for (_, limit, whose, _), count in zip(quotas, counts, strict=True):
            if count > limit:
                raise exceptions.Throttled(
                    wait=(window + 1) * WINDOW_SECONDS - now,
                    detail=f"{whose} has used its quota of {limit} API requests per minute.",
                )
        return True


def _quotas(request, api_key, window: int) -> list[tuple[str, int, str, int]]:
    """(cache key, limit, whose quota, calls) for each quota the request counts against. A
    batch counts as one call per item, against its key and each customer its items name."""
    quotas = []
    per_key = settings.SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_KEY
    if per_key:
        # The prefix, not the id: a test database reuses ids, a new key never reuses a prefix.
        key = f"switchyard:quota:key:{api_key.prefix}:{window}"
        quotas.append((key, per_key, "This API key", max(1, _items_in(request))))
    per_customer = settings.SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_CUSTOMER
    if per_customer:
        for slug, calls in _calls_by_customer(request, api_key).items():
            key = f"switchyard:quota:customer:{slug}:{window}"
            quotas.append((key, per_customer, f"Customer '{slug}'", calls))
    return quotas


def _items_in(request) -> int:
    items = request.data.get("items") if isinstance(request.data, Mapping) else None
    return len(items) if isinstance(items, list) else 0


def _calls_by_customer(request, api_key) -> dict[str, int]:
    """The customers the request acts for (``customer`` in the query or body, or each batch
    item's) that this key may act for, with the calls it makes for each: a key limited to its
    customers must not use up another customer's quota by naming it."""
    named = [request.query_params.get("customer")]
    if isinstance(request.data, Mapping):
        named.append(request.data.get("customer"))
        if _items_in(request):
            named += [i.get("customer") for i in request.data["items"] if isinstance(i, Mapping)]
    calls: dict[str, int] = {}
    for slug in named:
        if isinstance(slug, str) and _SLUG.fullmatch(slug):
            calls[slug] = calls.get(slug, 0) + 1
    if not calls or not api_key.customer_limited:
        return calls
    if len(calls) == 1:  # the common case, on the accept path: one prepared query
        [slug] = calls
        return calls if customer_by_slug(api_key=api_key, slug=slug) else {}
    visible = set(customers_visible_to(api_key).values_list("slug", flat=True))
    return {slug: n for slug, n in calls.items() if slug in visible}


def _count(keys: list[tuple[str, int]]) -> list[int] | None:
    """This request's calls counted in each key's window: the new counts, or None without a
    cache."""
    try:
        cache = caches["default"]
        if isinstance(cache, RedisCache):
            # Django's incr() costs two round trips (EXISTS, INCRBY) per key and needs an add()
            # first; INCRBY and EXPIRE in one pipeline are one round trip for all keys.
            pipeline = cache._cache.get_client(write=True).pipeline(transaction=False)
            for key, calls in keys:
                full_key = cache.make_and_validate_key(key)
                pipeline.incrby(full_key, calls)
                pipeline.expire(full_key, WINDOW_SECONDS + 5)
            return pipeline.execute()[::2]
        counts = []
        for key, calls in keys:
            cache.add(key, 0, WINDOW_SECONDS + 5)
            counts.append(cache.incr(key, calls))
        return counts
    except Exception:
        logger.warning("api.quota_unavailable", exc_info=True)
        return None
