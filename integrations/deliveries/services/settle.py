"""Settling attempts: what an outcome makes of its delivery (by the retry policy), and writing
attempt log rows and delivery changes in groups, only where the worker still holds the lease."""

from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.db import transaction
from django.utils import timezone

from config.db import insert_many, update_fields_many
from config.json_limits import nul_escaped
from config.metrics_recorded import DELIVERY_ATTEMPT_DURATION, DELIVERY_ATTEMPTS, DELIVERY_LATENCY
from config.prepared import PreparedRead
from integrations.deliveries.models import Delivery, DeliveryAttempt
from integrations.deliveries.retry import RetryPolicy, decide_retry
from integrations.deliveries.send import CallOutcome
from integrations.outbox import write_isolated
from integrations.providers.types import Outcome

__all__ = ("SETTLED_FIELDS", "Settlement", "log_ids", "settle_group", "settlement_for")

logger = structlog.stdlib.get_logger(__name__)

Status = Delivery.Status

SETTLED_FIELDS = ("status", "lease_token", "lease_until", "manual_retry", "updated_at")


@dataclass
class Settlement:
    """The end of one attempt, written with others of its group (``settle_group``)."""

    delivery: Delivery
    attempt: DeliveryAttempt
    status: str
    changes: dict
    outcome: str


def log_ids(delivery: Delivery) -> dict:
    """The ids a delivery's log lines carry (its customer is loaded with it by the claim)."""
    return {
        "delivery_id": delivery.pk,
        "attempt": delivery.attempts,
        "provider": delivery.provider_key,
        "customer": delivery.customer.slug,
        "request_id": delivery.request_id,
    }


def settlement_for(
    delivery: Delivery,
    outcome: CallOutcome,
    policy: RetryPolicy,
    started_at,
    resolved,
    dead_reason,
) -> Settlement:
    """What one attempt's outcome makes of its delivery, by the retry policy, and its log row."""
    decision = decide_retry(
        policy=policy,
        attempt=delivery.attempts,
        attempt_limit=delivery.attempt_limit,
        outcome=outcome.outcome,
        retry_after=outcome.retry_after,
    )
    now = timezone.now()
    if outcome.ok:
        status, changes = Status.SUCCEEDED, {"result": outcome.result, "last_error": ""}
    elif decision.retry:
        status = Status.PENDING
        changes = {
            "next_attempt_at": now + timedelta(seconds=decision.delay_seconds),
            "last_error": outcome.error,
        }
    else:
        status = Status.DEAD
        changes = {
            "dead_reason": dead_reason or _dead_reason(outcome.outcome),
            "last_error": f"{outcome.error} ({decision.reason})".strip(),
        }
    if status != Status.PENDING:
        changes["finished_at"] = now
    attempt = _attempt_row(
        delivery=delivery,
        started_at=started_at,
        outcome=outcome,
        resolved=resolved,
        next_delay=decision.delay_seconds,
    )
    return Settlement(delivery, attempt, status, changes, outcome.outcome)


def _dead_reason(outcome: str) -> str:
    if outcome == Outcome.AUTH_FAILED:
        return Delivery.DeadReason.AUTH_FAILED
    if outcome in (Outcome.RETRYABLE, Outcome.RATE_LIMITED):
        return Delivery.DeadReason.ATTEMPTS_EXHAUSTED
    return Delivery.DeadReason.NON_RETRYABLE


def _attempt_row(
    *, delivery: Delivery, started_at, outcome, resolved, next_delay
) -> DeliveryAttempt:
    """The attempt's log row, saved with the others of its settle group."""
    request, response = outcome.request, outcome.response
    return DeliveryAttempt(
        delivery=delivery,
        number=delivery.attempts,
        trigger=(
            DeliveryAttempt.Trigger.MANUAL
            if delivery.manual_retry
            else DeliveryAttempt.Trigger.AUTOMATIC
        ),
        started_at=started_at,
        duration_ms=outcome.duration_ms,
        outcome=outcome.outcome,
        error_class=outcome.error_class,
        error=outcome.error,
        credential_version=resolved.version if resolved else None,
        credential_version_id=resolved.version_id if resolved else None,
        request_method=request.get("method", ""),
        request_url=request.get("url", ""),
        request_headers=request.get("headers", {}),
        request_body=request.get("body", ""),
        response_status=response.get("status", outcome.status),
        response_headers=response.get("headers", {}),
        response_body=response.get("body", ""),
        retry_after=outcome.retry_after,
        next_delay_seconds=next_delay,
    )


def settle_group(settlements: list[Settlement]) -> dict[int, str | None]:
    """Record attempts and settle deliveries in one transaction, each only where this worker
    still holds the lease (rows locked here); one the database refuses is settled alone
    (``write_isolated``), never at the others' cost."""
    if not settlements:
        return {}
    tokens = list({s.delivery.lease_token for s in settlements} - {None})
    ids = [s.delivery.pk for s in settlements]
    with transaction.atomic():
        held = {pk for (pk,) in _LOCKED_HELD.rows(ids=ids, tokens=tokens)} if tokens else set()
        written = write_isolated(
            settlements, lambda group: _write(group, held), _unstorable, name="delivery"
        )
    results = {}
    written_ids = {s.delivery.pk for s in written}
    for settlement in settlements:
        delivery = settlement.delivery
        if delivery.pk not in held or delivery.pk not in written_ids:
            # The lease expired mid-attempt and another worker took over (its result wins), or
            # the write was refused twice (lease recovery takes it).
            logger.warning("deliveries.lease_lost", **log_ids(delivery))
            results[delivery.pk] = None
            continue
        logger.info(
            "deliveries.attempted",
            **log_ids(delivery),
            outcome=settlement.outcome,
            status=settlement.status,
            duration_ms=settlement.attempt.duration_ms,
        )
        attempt_observe(settlement)
        results[delivery.pk] = settlement.status
    return results


# Compiled once per group size: every settle runs it. Locked in primary key order.
_LOCKED_HELD = PreparedRead(
    lambda ids, tokens: (
        Delivery.objects.select_for_update()
        .filter(lease_token__in=tokens, pk__in=ids)
        .order_by("pk")
        .values_list("pk")
    )
)


def attempt_observe(settlement: Settlement) -> None:
    """The attempt in the worker's metrics; a success also gives its accepted → done latency."""
    delivery, outcome = settlement.delivery, settlement.outcome
    DELIVERY_ATTEMPT_DURATION.labels(delivery.provider_key, outcome).observe(
        settlement.attempt.duration_ms / 1000
    )
    DELIVERY_ATTEMPTS.labels(delivery.provider_key, outcome).inc()
    if settlement.status == Status.SUCCEEDED:
        latency = settlement.changes["finished_at"] - delivery.created_at
        DELIVERY_LATENCY.labels(delivery.provider_key).observe(latency.total_seconds())


def _write(settlements: list[Settlement], held: set[int]) -> None:
    """One INSERT for the attempts and one batched UPDATE per resulting status
    (``update_fields_many``) of the deliveries still held. Every attempt is logged, including
    one whose lease was lost: the provider saw it."""
    insert_many([s.attempt for s in settlements])
    now = timezone.now()
    for status in {s.status for s in settlements}:
        group = [s for s in settlements if s.status == status and s.delivery.pk in held]
        for settlement in group:
            delivery = settlement.delivery
            delivery.status, delivery.lease_token, delivery.lease_until = status, None, None
            delivery.manual_retry, delivery.updated_at = False, now
            for name, value in settlement.changes.items():
                setattr(delivery, name, value)
        if group:
            update_fields_many([s.delivery for s in group], [*SETTLED_FIELDS, *group[0].changes])


def _unstorable(settlement: Settlement, exc: Exception) -> None:
    """What the database refused to store of one attempt (e.g. a NUL character in an answer on
    PostgreSQL) is dropped, with a note; the attempt's outcome stands."""
    note = f"[not stored: the database refused it ({exc.__class__.__name__})]"
    attempt = settlement.attempt
    attempt.request_headers, attempt.response_headers = {}, {}
    attempt.request_body = attempt.response_body = note
    attempt.error = nul_escaped(attempt.error)
    if "result" in settlement.changes:
        settlement.changes["result"] = None
    if "last_error" in settlement.changes:
        settlement.changes["last_error"] = nul_escaped(settlement.changes["last_error"])
