"""Being a good citizen towards providers: rate limits per credential, cool-downs after a 429,
and a circuit breaker per provider and region. The delivery engine asks ``SendPermits.permit``
before each send and reports each result to ``send_settled``; work that may not go now is
rescheduled by the caller, never slept on."""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings

from integrations.deliveries.retry import provider_delay
from integrations.limits.stores import Quota, limit_store
from integrations.limits.transitions import breaker_transitioned
from integrations.providers.types import Outcome
from integrations.registry import get_provider

__all__ = ("Deferral", "Permit", "SendPermits", "rate_limit_quotas", "send_settled")

logger = logging.getLogger(__name__)

# Deferred work is spread over this much extra time, so a backlog that comes due together
# (a breaker closing) reaches the workers as a stream rather than a stampede.
DEFER_SPREAD_SECONDS = 1.0
# At most this many rate-limit slots taken at once for one scope (SendPermits).
MAX_GRANT = 32


@dataclass(frozen=True)
class Deferral:
    """Why a send may not go now, and after how many seconds to try again."""

    seconds: float
    reason: str


@dataclass(frozen=True)
class Permit:
    """A send may go. ``breaker_clean``: its breaker had no failures counted when asked."""

    breaker_clean: bool


def _secret_digest(value: str) -> str:
    # Scope keys end up in Redis and in a table: a digest groups equal keys without storing them.
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def rate_limit_quotas(
    *,
    provider_key: str,
    config: Mapping,
    customer_id: int,
    credential_id: int | None,
    credential_fields: Mapping[str, str],
) -> list[Quota]:
    """The limits one send counts against: the credential's (provider default, or the
    integration's ``config.rate_limit``), plus any limit the provider applies to a value several
    credentials share (Trello counts per token and per API key), plus the provider's bucket
    when several credentials fill the same one (Shopify's shop). The bucket's quota, else the
    credential's, is the one the provider's bucket headers pace (``Quota.paced``).

    The bucket is the customer's own: another tenant naming the same shop never shares it, and
    its rate is the provider's, never a tenant's ``config.rate_limit``, so every sender on the
    key counts (and prunes) hits over the same window."""
    provider = get_provider(provider_key)
    owner = f"credential:{credential_id}" if credential_id else f"customer:{customer_id}"
    limits = [(f"{provider_key}:{owner}", provider.rate_limit(config))]
    for field_name, shared in provider.shared_rate_limits.items():
        if value := credential_fields.get(field_name):
            limits.append((f"{provider_key}:{field_name}:{_secret_digest(value)}", shared))
    paced = 0
    if bucket := provider.bucket_scope(config):
        paced = len(limits)
        limits.append(
            (_bucket_key(provider_key, customer_id, bucket), dict(provider.default_rate_limit))
        )
    margin = settings.SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS
    share = settings.SWITCHYARD_RATE_LIMIT_BACKLOG_SHARE
    return [
        Quota(
            key,
            limit["rate"],
            limit["per_seconds"] + margin,
            backlog_share=share,
            paced=index == paced,
        )
        for index, (key, limit) in enumerate(limits)
    ]


def _bucket_key(provider_key: str, customer_id: int, bucket: str) -> str:
    # Per customer and bucket: one customer's credentials and integrations on a shop pace
    # together; a customer naming someone else's shop only fills its own key. Readable in
    # Redis and the table (a shop's host); a long base_url override is digested to fit.
    prefix = f"{provider_key}:bucket:{customer_id}:"
    key = f"{prefix}{bucket}"
    return key if len(key) <= 120 else f"{prefix}{_secret_digest(bucket)}"


def _spread(seconds: float) -> float:
    return seconds + random.uniform(0, DEFER_SPREAD_SECONDS)  # noqa: S311 - not security


@dataclass
class _Grant:
    """Slots taken for one scope, to be used before ``until`` (epoch seconds)."""

    slots: int
    until: float
    used: int = 1


class SendPermits:
    """Permits for the sends of one worker batch.

    Rather than one trip to the shared limiter per send (on SQLite, a write transaction under
    the database's single lock), slots are taken several at a time for the same scope: the
    number asked for doubles while a grant is used up within the horizon and falls back to what
    was used when one runs out of time, so a slow provider is not handed slots it cannot use.
    Before each use of a granted slot a read (no lock, no write) confirms that no cool-down has
    begun and the breaker is still closed, so a 429 or an opening breaker elsewhere stops these
    sends as promptly as it stops admitted ones."""

    def __init__(self):
        self._grants: dict[tuple, _Grant] = {}

    def permit(
        self, *, provider_key: str, region: str, quotas: list[Quota], customer_id: int, wanted=1
    ) -> Permit | Deferral:
        """A ``Permit`` when the send may go now (its rate-limit slots are taken), else a
        ``Deferral``: the rate limit, or the provider and region's open circuit breaker (which
        then costs no rate-limit slot). ``wanted``: sends of this batch still to make on the
        same scope, this one included (an upper bound on the slots worth taking)."""
        store = limit_store()
        breaker = (provider_key, region)
        scope = (provider_key, region, *(q.key for q in quotas))
        now = time.time()
        grant = self._grants.pop(scope, None)
        if grant is not None and grant.slots and now < grant.until:
            check = store.recheck(quotas, breaker=breaker, now=now)
            if check.wait is None:
                grant.slots -= 1
                grant.used += 1
                self._grants[scope] = grant
                return Permit(breaker_clean=check.clean)
        horizon = settings.SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS / 2
        ask = 1
        if grant is not None and horizon > 0:
            ask = min(grant.used * 2 if not grant.slots else grant.used, wanted, MAX_GRANT)
        admission = store.admit(
            quotas,
            customer=str(customer_id),
            now=now,
            breaker=breaker,
            probe_lease=settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS + 5,
            count=ask,
            horizon=horizon,
        )
        if admission.probe:
            logger.info("limits.breaker_probe provider=%s region=%s", provider_key, region)
        if admission.wait is None:
            self._grants[scope] = _Grant(slots=admission.granted - 1, until=now + horizon)
            return Permit(breaker_clean=admission.clean)
        if admission.cause == "rate":
            return Deferral(
                admission.wait, f"rate limit of {quotas[0].key} ({quotas[0].rate} per window)"
            )
        return Deferral(
            _spread(min(admission.wait, settings.SWITCHYARD_BREAKER_COOL_OFF_SECONDS)),
            f"circuit breaker of {provider_key}/{region or '-'} is open",
        )


def _breaker_failure(outcome) -> bool:
    # Only signs of an unhealthy provider trip the breaker: 5xx, 408/425, timeouts, refused
    # connections. A 4xx or a 429 is about our request or our pace, not the provider's health.
    return outcome.outcome == Outcome.RETRYABLE


def _paced_quota(quotas: list[Quota]) -> Quota | None:
    return next((quota for quota in quotas if quota.paced), None)


def _paced(provider_key: str, quota: Quota, outcome) -> float:
    """Seconds the sends on the quota's scope wait after this answer, by the provider's bucket
    header; the quota's rate is the bucket's leak rate."""
    headers = (outcome.response or {}).get("headers") or {}
    leak_per_second = quota.rate / quota.window if quota.window else 0.0
    return get_provider(provider_key).pace_seconds(headers, leak_per_second)


def send_settled(
    *,
    provider_key: str,
    region: str,
    quotas: list[Quota],
    delivery_id: int,
    outcome,
    permit: Permit,
) -> None:
    """Feed one result back: a 429 cools the credential down for the delay the provider asked
    for; the breaker counts failures of distinct deliveries and closes on a success (a success
    on a breaker that was clean when the send began has nothing to reset, and costs nothing)."""
    store = limit_store()
    now = time.time()
    if outcome.outcome == Outcome.RATE_LIMITED and outcome.retry_after:
        # Clamped as the retry policy clamps it: a cool-down holds every send on the credential.
        seconds = provider_delay(outcome.retry_after)
        store.cool_down([q.key for q in quotas], until=now + seconds)
        logger.warning("limits.cool_down scope=%s seconds=%s", quotas[0].key, round(seconds, 3))
    elif (paced := _paced_quota(quotas)) and (seconds := _paced(provider_key, paced, outcome)):
        # The provider says how full its bucket is (Shopify: the shop's): every worker, and
        # every credential of this customer sending into that bucket, waits it out.
        store.cool_down([paced.key], until=now + seconds)
        logger.info("limits.paced scope=%s seconds=%s", paced.key, round(seconds, 3))
    if (outcome.ok and not permit.breaker_clean) or _breaker_failure(outcome):
        changed = store.breaker_record(
            provider_key,
            region,
            ok=outcome.ok,
            delivery_id=delivery_id,
            threshold=settings.SWITCHYARD_BREAKER_FAILURES,
            cool_off=settings.SWITCHYARD_BREAKER_COOL_OFF_SECONDS,
            now=now,
            error=outcome.error[:500],
        )
        if changed:
            breaker_transitioned(provider=provider_key, region=region, state=changed)
