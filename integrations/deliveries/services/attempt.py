"""Attempting deliveries (a worker's batch): claim them, send each within the rate limits with
its credentials, and settle the outcomes in groups."""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from config import tracing
from config.prepared import PreparedRead
from credentials.services import (
    CredentialNotConfigured,
    credential_resolve,
    credential_version_mark_used,
)
from integrations import egress
from integrations.capabilities import CAPABILITIES
from integrations.deliveries.models import Delivery
from integrations.deliveries.prepare import PreparedCall
from integrations.deliveries.retry import RetryPolicy
from integrations.deliveries.send import CallOutcome, operation_execute
from integrations.deliveries.services.outbox import DELIVERIES
from integrations.deliveries.services.policy import retry_policy
from integrations.deliveries.services.settle import (
    Settlement,
    log_ids,
    settle_group,
    settlement_for,
)
from integrations.deliveries.services.tokens import (
    TOKEN_CONFIGURATION_ERRORS,
    TokenRefreshFailed,
    delivery_token_fresh,
    token_refresh_outcome,
    token_refresh_wanted,
)
from integrations.limits.services import Deferral, SendPermits, rate_limit_quotas, send_settled
from integrations.providers.types import CredentialPurpose, Outcome
from integrations.registry import get_provider

__all__ = ("deliveries_attempt",)

logger = structlog.stdlib.get_logger(__name__)

# Attempts are recorded and settled in groups of up to this many, or this often: fewer commits,
# while a worker that dies leaves at most one group sent but unsettled (sent again once its
# lease expires, with the same idempotency key).
SETTLE_GROUP = 20
SETTLE_GROUP_SECONDS = 0.25
# Exceptions that the same data would raise again: an attempt crashing with one is not retried.
REPEATING_ERRORS = (ArithmeticError, AttributeError, LookupError, TypeError, ValueError)


@dataclass
class _BatchCache:
    """What deliveries of one batch share: resolved credentials per provider and customer, the
    credential versions used (marked once per batch, not once per call), rate-limit slots
    taken ahead, and how many sends per provider and customer are still to come (the most
    slots worth taking)."""

    # Plaintext credential fields: never in a repr or an error report.
    credentials: dict = field(default_factory=dict, repr=False)
    versions_used: set = field(default_factory=set)
    permits: SendPermits = field(default_factory=SendPermits)
    to_come: Counter = field(default_factory=Counter)


def deliveries_attempt(*, delivery_ids: list[int]) -> dict[int, str | None]:
    """Claim the due deliveries among ``delivery_ids``, then send and settle one attempt of each
    in turn. Returns each claimed one's new status (None where its lease was lost); ids that were
    not due, already taken or finished are absent.

    After SWITCHYARD_SEND_BATCH_SECONDS the rest is given back, un-attempted, to the relay rather
    than risking the task timeout; so is it when the lease heartbeat cannot renew the lease.
    The heartbeat runs from the claim until the last settle, however the batch ends."""
    started, started_ns = time.monotonic(), time.time_ns()
    claimed = {delivery.pk: delivery for delivery in _claim(delivery_ids)}
    queue = [claimed[pk] for pk in delivery_ids if pk in claimed]
    # The task's span joins the trace its deliveries were accepted in (links when several);
    # begun before the claim, which is when that becomes known.
    with tracing.span(
        "deliveries.task",
        kind=tracing.SpanKind.CONSUMER,
        parents=[delivery.trace_parent for delivery in queue],
        attributes={
            "messaging.batch.message_count": len(delivery_ids),
            "switchyard.claimed": len(queue),
        },
        start_time=started_ns,
    ):
        return _attempt_claimed(queue, claimed, started)


def _attempt_claimed(
    queue: list[Delivery], claimed: dict[int, Delivery], started: float
) -> dict[int, str | None]:
    """The batch of ``deliveries_attempt`` once claimed: each attempted and settled in turn."""
    cache = _BatchCache(to_come=Counter((d.provider_key, d.customer_id) for d in queue))
    results: dict[int, str | None] = {}
    unsettled: list[Settlement] = []
    settled_at = time.monotonic()
    heartbeat = DELIVERIES.heartbeat(claimed, queue[0].lease_token if queue else None)
    with heartbeat:
        for position, delivery in enumerate(queue):
            late = time.monotonic() - started > settings.SWITCHYARD_SEND_BATCH_SECONDS
            if late or not heartbeat.holding():
                _release(queue[position:], enqueued_until=None)
                logger.info(
                    "deliveries.batch_handed_back",
                    count=len(queue) - position,
                    reason="batch_time" if late else "lease_not_renewed",
                )
                break
            attempt_started = timezone.now()
            # Every line logged while the attempt runs (egress, limits) names the delivery; its
            # span continues the trace of the request that created it.
            with (
                structlog.contextvars.bound_contextvars(**log_ids(delivery)),
                tracing.span(
                    "delivery.attempt",
                    parents=[delivery.trace_parent],
                    attributes=_span_ids(delivery),
                ) as span,
            ):
                try:
                    result = _attempt(delivery, cache)
                except Exception as exc:
                    result = _crashed(delivery, exc, attempt_started)
                tracing.annotate(
                    span, {"switchyard.outcome": getattr(result, "outcome", "deferred")}
                )
            cache.to_come[delivery.provider_key, delivery.customer_id] -= 1
            if not isinstance(result, Settlement):
                results[delivery.pk] = result
                continue
            unsettled.append(result)
            if (
                len(unsettled) >= SETTLE_GROUP
                or time.monotonic() - settled_at > SETTLE_GROUP_SECONDS
            ):
                results |= settle_group(unsettled)
                unsettled, settled_at = [], time.monotonic()
        results |= settle_group(unsettled)
    for version_id in cache.versions_used:
        credential_version_mark_used(version_id=version_id)
    return results


def _span_ids(delivery: Delivery) -> dict:
    """What an attempt's span says of it: ids and names, never its input or credentials."""
    return {
        "switchyard.delivery_id": delivery.pk,
        "switchyard.attempt": delivery.attempts,
        "switchyard.provider": delivery.provider_key,
        "switchyard.action": delivery.action,
        "switchyard.customer_id": delivery.customer_id,
    }


def _claim(delivery_ids: list[int]) -> list[Delivery]:
    """Claim the due deliveries among ``delivery_ids`` (``Outbox.claim``) and load them."""
    token = DELIVERIES.claim(delivery_ids)
    return _CLAIMED.objects(ids=delivery_ids, token=token) if delivery_ids else []


# Compiled once per batch size: a worker loads what it claimed on every task.
_CLAIMED = PreparedRead(
    lambda ids, token: (
        DELIVERIES.held(ids, token).select_related("customer__region", "integration").order_by()
    )
)


def _release(deliveries: list[Delivery], **changes) -> int:
    """Give claimed deliveries back as pending, un-counting the attempt they never made."""
    return DELIVERIES.release(
        [d.pk for d in deliveries], [d.lease_token for d in deliveries], **changes
    )


@sensitive_variables("credentials", "resolved")
def _attempt(delivery: Delivery, cache: _BatchCache) -> Settlement | str | None:
    """Send one claimed delivery; its settlement, or the result of deferring it unsent."""
    started_at = timezone.now()
    resolved = None
    try:
        credentials, resolved = _resolve_credentials(delivery, cache)
        # OAuth 2.0: an access token about to expire is refreshed first (integrations/oauth.py).
        credentials, resolved = delivery_token_fresh(
            delivery, cache.credentials, credentials, resolved
        )
    except CredentialNotConfigured as exc:
        outcome = CallOutcome(
            Outcome.TERMINAL, error=str(exc), error_class="credential_not_configured"
        )
        dead_reason = Delivery.DeadReason.CONFIGURATION
    except TokenRefreshFailed as exc:
        outcome = token_refresh_outcome(exc)
        refused = outcome.error_class in TOKEN_CONFIGURATION_ERRORS
        dead_reason = Delivery.DeadReason.CONFIGURATION if refused else None
    else:
        outcome = _send_within_limits(delivery, cache, credentials, resolved)
        if token_refresh_wanted(delivery, outcome, resolved):
            outcome, resolved = _resend_refreshed(delivery, cache, resolved)
        if isinstance(outcome, Deferral):
            return _defer(delivery, outcome)
        # A destination the egress policy refuses is a configuration matter (base_url, URL or
        # SWITCHYARD_EGRESS_ALLOW), not the provider's answer.
        refused = outcome.error_class in ("egress_refused", *TOKEN_CONFIGURATION_ERRORS)
        dead_reason = Delivery.DeadReason.CONFIGURATION if refused else None
        if resolved is not None:
            cache.versions_used.add(resolved.version_id)
    policy = retry_policy(delivery.provider_key, delivery.integration)
    return settlement_for(delivery, outcome, policy, started_at, resolved, dead_reason)


@sensitive_variables("credentials", "resolved")
def _resend_refreshed(delivery: Delivery, cache: _BatchCache, resolved):
    """After a 401 to a refreshable token: refresh once (or take the version another worker
    just refreshed) and send again; (outcome, credential used)."""
    try:
        credentials, resolved = delivery_token_fresh(
            delivery, cache.credentials, resolved.fields, resolved, force=True
        )
    except TokenRefreshFailed as exc:
        return token_refresh_outcome(exc), resolved
    return _send_within_limits(delivery, cache, credentials, resolved), resolved


@sensitive_variables("credentials", "resolved")
def _send_within_limits(
    delivery: Delivery, cache: _BatchCache, credentials, resolved
) -> CallOutcome | Deferral:
    """Send the delivery's call under a rate-limit permit, or the deferral the limits ask for."""
    quotas = rate_limit_quotas(
        provider_key=delivery.provider_key,
        config=delivery.integration.config if delivery.integration else {},
        customer_id=delivery.customer_id,
        credential_id=resolved.credential_id if resolved else None,
        credential_fields=credentials,
    )
    region = delivery.customer.region.code
    scope = dict(provider_key=delivery.provider_key, region=region, quotas=quotas)
    permit = cache.permits.permit(
        customer_id=delivery.customer_id,
        wanted=cache.to_come[delivery.provider_key, delivery.customer_id],
        **scope,
    )
    if isinstance(permit, Deferral):
        return permit
    outcome = operation_execute(
        call=_call_of(delivery),
        customer=delivery.customer,
        credentials=credentials,
        session=egress.session_for(delivery.provider_key),
        integration=delivery.integration,
        idempotency_key=str(delivery.key),
        timeout=_attempt_timeout(delivery),
        credential_shared=bool(resolved and resolved.shared),
    )
    send_settled(delivery_id=delivery.pk, outcome=outcome, permit=permit, **scope)
    return outcome


def _call_of(delivery: Delivery) -> PreparedCall:
    """The call as ``action_prepare`` made it when the delivery was accepted."""
    return PreparedCall(
        provider_key=delivery.provider_key,
        operation=delivery.operation,
        integration_id=delivery.integration_id,
        input=delivery.input,
        capability=delivery.action if delivery.action in CAPABILITIES else None,
    )


@sensitive_variables("resolved", "found")
def _resolve_credentials(delivery: Delivery, cache: _BatchCache):
    """(credential fields, resolved credential or None) for the call, or raise
    CredentialNotConfigured. Providers whose API needs no secret go without."""
    key = (delivery.provider_key, delivery.customer_id)
    if key not in cache.credentials:
        try:
            resolved = credential_resolve(
                provider=delivery.provider_key,
                customer=delivery.customer,
                purpose=CredentialPurpose.API,
            )
            cache.credentials[key] = (resolved.fields, resolved)
        except CredentialNotConfigured as exc:
            fields = get_provider(delivery.provider_key).credential_fields.get(
                CredentialPurpose.API, []
            )
            cache.credentials[key] = exc if any(f.required for f in fields) else ({}, None)
    found = cache.credentials[key]
    if isinstance(found, Exception):
        raise found
    return found


def _attempt_timeout(delivery: Delivery) -> tuple[float, float]:
    config = delivery.integration.config if delivery.integration else {}
    return get_provider(delivery.provider_key).timeouts(
        config, deadline=float(settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS)
    )


def _defer(delivery: Delivery, deferral: Deferral) -> str | None:
    """Give a claimed delivery back without an attempt: it did not reach the provider, so it
    costs no attempt, and it comes due when the limit allows."""
    returned = _release(
        [delivery],
        next_attempt_at=timezone.now() + timedelta(seconds=deferral.seconds),
        last_error=f"Deferred {deferral.seconds:.1f} s: {deferral.reason}.",
    )
    logger.info("deliveries.deferred", seconds=round(deferral.seconds, 3), reason=deferral.reason)
    return Delivery.Status.PENDING if returned else None


def _crashed(delivery: Delivery, exc: Exception, started_at) -> Settlement:
    """An attempt that raised instead of returning an outcome (a bug, data the code did not
    foresee) settles as a failed attempt with its error class, by the default policy: retried
    where a retry may help, dead at once where the same data would fail the same way."""
    logger.exception("deliveries.attempt_crashed")
    name = exc.__class__.__name__
    outcome = CallOutcome(
        Outcome.TERMINAL if isinstance(exc, REPEATING_ERRORS) else Outcome.RETRYABLE,
        error=f"Switchyard failed during the attempt: {name}: {exc}"[:2000],
        error_class=name[:64],
    )
    return settlement_for(delivery, outcome, RetryPolicy(), started_at, None, None)
