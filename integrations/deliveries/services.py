"""Writes of the delivery engine: accept, attempt, retry, cancel, and the dispatcher's upkeep.

Deliveries are an outbox (``DELIVERIES``, integrations/outbox): claim, lease, relay, recovery,
dead letters and retries are that one mechanism's, shared with inbound events."""

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import ValidationError

from config.api.problems import ProblemConflict
from config.db import update_fields_many
from config.json_limits import nul_escaped
from customers.models import ApiKey
from customers.selectors import customers_visible_to
from integrations import egress
from integrations.actions import CallOutcome, PreparedCall, action_prepare, operation_execute
from integrations.capabilities import CAPABILITIES
from integrations.limits.services import Deferral, SendPermits, rate_limit_quotas, send_settled
from integrations.models import Delivery, DeliveryAttempt, Integration
from integrations.outbox import Outbox, enqueued_until, relay_due, write_isolated
from integrations.providers.base import CredentialPurpose, Outcome
from integrations.registry import get_provider
from integrations.retry import RetryPolicy, decide_retry, policy_for

__all__ = (
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "IdempotencyKeyReused",
    "dead_letters_retry",
    "deliveries_attempt",
    "deliveries_cancel",
    "deliveries_recover_leases",
    "deliveries_relay_due",
    "delivery_attempt",
    "delivery_cancel",
    "delivery_create",
    "delivery_retry",
    "idempotency_keys_purge",
)

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX_LENGTH = 255
BULK_CHUNK = 1000
# Attempts are recorded and settled in groups of up to this many, or this often: fewer commits,
# while a worker that dies leaves at most one group sent but unsettled (sent again once its
# lease expires, with the same idempotency key).
SETTLE_GROUP = 20
SETTLE_GROUP_SECONDS = 0.25
# Exceptions that the same data would raise again: an attempt crashing with one is not retried.
REPEATING_ERRORS = (ArithmeticError, AttributeError, LookupError, TypeError, ValueError)

Status = Delivery.Status

DELIVERIES = Outbox(
    model=Delivery,
    task_path="integrations.tasks.delivery_send_batch",
    batch_setting="SWITCHYARD_SEND_BATCH",
    waiting=(Status.PENDING,),
    claimed=Status.IN_FLIGHT,
    dead=Status.DEAD,
    error_field="last_error",
    finished_field="finished_at",
    dead_reason_field="dead_reason",
    dead_reasons={
        "worker_lost": Delivery.DeadReason.WORKER_LOST,
        "exhausted": Delivery.DeadReason.ATTEMPTS_EXHAUSTED,
    },
    lost_error="Worker lost during the attempt (lease expired); the provider may have received it.",
    updated_field="updated_at",
    fair_by="customer",
)


class IdempotencyKeyReused(ValidationError):
    status_code = 422
    default_code = "idempotency-key-reused"


# --- accepting ------------------------------------------------------------------------------


def _fingerprint(*, customer: str, action: str, input: dict) -> str:
    canonical = json.dumps(
        {"customer": customer, "action": action, "input": input}, sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(existing: Delivery, fingerprint: str, api_key: ApiKey | None) -> tuple[Delivery, bool]:
    # A key whose customers were narrowed since gets no more of that customer through a replay.
    if not customers_visible_to(api_key).filter(pk=existing.customer_id).exists():
        raise ValidationError({"customer": ["Unknown customer."]})
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            {
                "Idempotency-Key": [
                    f"This key was used for delivery {existing.pk} with a different body; "
                    "use a new key for a different request."
                ]
            }
        )
    return existing, True


def delivery_create(
    *,
    api_key: ApiKey | None,
    customer: str,
    action: str,
    input: dict,
    idempotency_key: str | None = None,
    internal: bool = False,
) -> tuple[Delivery, bool]:
    """Validate and store a delivery, queueing it on commit. Returns (delivery, replayed).

    ``internal``: the platform's own call (fan-out), which may use internal operations.

    With ``idempotency_key`` (Stripe semantics, scoped to the API key): the same key and body
    return the original delivery; a different body is a 422; a concurrent first request still
    being created is a 409."""
    if idempotency_key is not None and not 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationError(
            {"Idempotency-Key": [f"Must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters long."]}
        )
    fingerprint = _fingerprint(customer=customer, action=action, input=input)
    existing_for_key = Delivery.objects.filter(api_key=api_key, idempotency_key=idempotency_key)
    if idempotency_key and (existing := existing_for_key.first()):
        return _replay(existing, fingerprint, api_key)

    customer_row = customers_visible_to(api_key).filter(slug=customer).first()
    if customer_row is None:
        raise ValidationError({"customer": [f"Unknown customer '{customer}'."]})
    if not customer_row.active:
        raise ValidationError({"customer": [f"Customer '{customer}' is inactive."]})
    call = action_prepare(
        customer=customer_row, action=action, input=input, allow_internal=internal
    )
    integration = Integration.objects.filter(pk=call.integration_id).first()
    policy = _policy(call.provider_key, integration)
    # While its customer has fewer deliveries queued or in flight than a cluster has workers
    # (one is likely idle), a delivery goes to the broker at once, as a task of its own: the
    # lowest latency. Beyond that the relay takes it on its next pass, in batches (a task per
    # batch costs a worker far less per delivery than a task each, so a steady stream does not
    # back up behind single-delivery tasks) and in turn with other customers' work.
    direct = _customer_queued(customer_row.pk) < min(
        settings.Q_CLUSTER["workers"], settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT
    )
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                customer=customer_row,
                api_key=api_key,
                action=action,
                provider_key=call.provider_key,
                operation=call.operation,
                integration_id=call.integration_id,
                input=call.input,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                attempt_limit=policy.max_attempts,
                next_attempt_at=timezone.now(),
                enqueued_until=enqueued_until() if direct else None,
            )
            if direct:
                transaction.on_commit(lambda: DELIVERIES.enqueue([delivery.pk]))
    except IntegrityError:
        existing = existing_for_key.first()
        if existing is None:
            raise ProblemConflict(
                "A request with this Idempotency-Key is still being processed; retry shortly."
            ) from None
        return _replay(existing, fingerprint, api_key)
    logger.info(
        "deliveries.accepted delivery=%s customer=%s action=%s", delivery.pk, customer, action
    )
    return delivery, False


def _policy(provider_key: str, integration: Integration | None) -> RetryPolicy:
    config = integration.config if integration else {}
    return policy_for(get_provider(provider_key).retry_settings(config))


def _customer_queued(customer_id: int) -> int:
    """Deliveries of a customer in the broker or in flight (deferred ones wait in the table)."""
    queued = Q(status=Status.PENDING, enqueued_until__gt=timezone.now())
    busy = Delivery.objects.filter(queued | Q(status=Status.IN_FLIGHT), customer_id=customer_id)
    return busy.count()


# --- attempting (worker) --------------------------------------------------------------------


def _claim(delivery_ids: list[int]) -> list[Delivery]:
    """Claim the due deliveries among ``delivery_ids`` (``Outbox.claim``) and load them."""
    token = DELIVERIES.claim(delivery_ids)
    return list(
        DELIVERIES.held(delivery_ids, token).select_related("customer__region", "integration")
    )


def _release(deliveries: list[Delivery], **changes) -> int:
    """Give claimed deliveries back as pending, un-counting the attempt they never made."""
    return DELIVERIES.release(
        [d.pk for d in deliveries], [d.lease_token for d in deliveries], **changes
    )


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


@dataclass
class _Settlement:
    """The end of one attempt, written with others of its group (``_settle``)."""

    delivery: Delivery
    attempt: DeliveryAttempt
    status: str
    changes: dict
    outcome: str


SETTLED_FIELDS = ("status", "lease_token", "lease_until", "manual_retry", "updated_at")


def _write(settlements: list[_Settlement], held: set[int]) -> None:
    """One INSERT for the attempts and one batched UPDATE per resulting status
    (``update_fields_many``) of the deliveries still held. Every attempt is logged, including
    one whose lease was lost: the provider saw it."""
    for settlement in settlements:
        settlement.attempt.pk = None  # written again after a refused group write
    DeliveryAttempt.objects.bulk_create([s.attempt for s in settlements])
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


def _unstorable(settlement: _Settlement, exc: Exception) -> None:
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


def _settle(settlements: list[_Settlement]) -> dict[int, str | None]:
    """Record attempts and settle deliveries in one transaction, each only where this worker
    still holds the lease (rows locked here); one the database refuses is settled alone
    (``write_isolated``), never at the others' cost."""
    if not settlements:
        return {}
    tokens = {s.delivery.lease_token for s in settlements}
    with transaction.atomic():
        held = set(
            Delivery.objects.select_for_update()
            .filter(lease_token__in=tokens, pk__in=[s.delivery.pk for s in settlements])
            .values_list("pk", flat=True)
        )
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
            logger.warning("deliveries.lease_lost delivery=%s", delivery.pk)
            results[delivery.pk] = None
            continue
        logger.info(
            "deliveries.attempted delivery=%s attempt=%s outcome=%s status=%s",
            delivery.pk,
            delivery.attempts,
            settlement.outcome,
            settlement.status,
        )
        results[delivery.pk] = settlement.status
    return results


@sensitive_variables("resolved", "found")
def _resolve_credentials(delivery: Delivery, cache: _BatchCache):
    """(credential fields, resolved credential or None) for the call, or raise
    CredentialNotConfigured. Providers whose API needs no secret go without."""
    from credentials.services import CredentialNotConfigured, credential_resolve

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
    """(connect, read) for each socket operation: the provider's, or the integration's
    ``config.timeouts``, never beyond the attempt's total deadline (which the pooled session
    enforces over the whole call)."""
    config = delivery.integration.config if delivery.integration else {}
    timeouts = get_provider(delivery.provider_key).timeouts(config)
    deadline = float(settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS)
    return (min(timeouts["connect_seconds"], deadline), min(timeouts["read_seconds"], deadline))


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


def _defer(delivery: Delivery, deferral: Deferral) -> str | None:
    """Give a claimed delivery back without an attempt: it did not reach the provider, so it
    costs no attempt, and it comes due when the limit allows."""
    returned = _release(
        [delivery],
        next_attempt_at=timezone.now() + timedelta(seconds=deferral.seconds),
        last_error=f"Deferred {deferral.seconds:.1f} s: {deferral.reason}.",
    )
    logger.info(
        "deliveries.deferred delivery=%s seconds=%.3f reason=%s",
        delivery.pk,
        deferral.seconds,
        deferral.reason,
    )
    return Status.PENDING if returned else None


@sensitive_variables("credentials", "resolved")
def _attempt(delivery: Delivery, cache: _BatchCache) -> _Settlement | str | None:
    """Send one claimed delivery; its settlement, or the result of deferring it unsent."""
    from credentials.services import CredentialNotConfigured

    started_at = timezone.now()
    call = PreparedCall(
        provider_key=delivery.provider_key,
        operation=delivery.operation,
        integration_id=delivery.integration_id,
        input=delivery.input,
        capability=delivery.action if delivery.action in CAPABILITIES else None,
    )
    resolved = None
    try:
        credentials, resolved = _resolve_credentials(delivery, cache)
    except CredentialNotConfigured as exc:
        outcome = CallOutcome(
            Outcome.TERMINAL, error=str(exc), error_class="credential_not_configured"
        )
        dead_reason = Delivery.DeadReason.CONFIGURATION
    else:
        region = delivery.customer.region.code
        quotas = rate_limit_quotas(
            provider_key=delivery.provider_key,
            config=delivery.integration.config if delivery.integration else {},
            customer_id=delivery.customer_id,
            credential_id=resolved.credential_id if resolved else None,
            credential_fields=credentials,
        )
        scope = dict(provider_key=delivery.provider_key, region=region, quotas=quotas)
        permit = cache.permits.permit(
            customer_id=delivery.customer_id,
            wanted=cache.to_come[delivery.provider_key, delivery.customer_id],
            **scope,
        )
        if isinstance(permit, Deferral):
            return _defer(delivery, permit)
        outcome = operation_execute(
            call=call,
            customer=delivery.customer,
            credentials=credentials,
            session=egress.session_for(delivery.provider_key),
            integration=delivery.integration,
            idempotency_key=str(delivery.key),
            timeout=_attempt_timeout(delivery),
            credential_shared=bool(resolved and resolved.shared),
        )
        send_settled(delivery_id=delivery.pk, outcome=outcome, permit=permit, **scope)
        # A destination the egress policy refuses is a configuration matter (base_url, URL or
        # SWITCHYARD_EGRESS_ALLOW), not the provider's answer.
        refused = outcome.error_class == "egress_refused"
        dead_reason = Delivery.DeadReason.CONFIGURATION if refused else None
        if resolved is not None:
            cache.versions_used.add(resolved.version_id)
    policy = _policy(delivery.provider_key, delivery.integration)
    return _settlement(delivery, outcome, policy, started_at, resolved, dead_reason)


def _settlement(
    delivery: Delivery, outcome: CallOutcome, policy, started_at, resolved, dead_reason
) -> _Settlement:
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
    return _Settlement(delivery, attempt, status, changes, outcome.outcome)


def _crashed(delivery: Delivery, exc: Exception, started_at) -> _Settlement:
    """An attempt that raised instead of returning an outcome (a bug, data the code did not
    foresee) settles as a failed attempt with its error class, by the default policy: retried
    where a retry may help, dead at once where the same data would fail the same way."""
    logger.exception("deliveries.attempt_crashed delivery=%s", delivery.pk)
    name = exc.__class__.__name__
    outcome = CallOutcome(
        Outcome.TERMINAL if isinstance(exc, REPEATING_ERRORS) else Outcome.RETRYABLE,
        error=f"Switchyard failed during the attempt: {name}: {exc}"[:2000],
        error_class=name[:64],
    )
    return _settlement(delivery, outcome, RetryPolicy(), started_at, None, None)


def deliveries_attempt(*, delivery_ids: list[int]) -> dict[int, str | None]:
    """Claim the due deliveries among ``delivery_ids``, then send and settle one attempt of each
    in turn. Returns each claimed one's new status (None where its lease was lost); ids that were
    not due, already taken or finished are absent.

    After SWITCHYARD_SEND_BATCH_SECONDS the rest is given back, un-attempted, to the relay rather
    than risking the task timeout; so is it when the lease heartbeat cannot renew the lease.
    The heartbeat runs from the claim until the last settle, however the batch ends."""
    from credentials.services import credential_version_mark_used

    started = time.monotonic()
    claimed = {delivery.pk: delivery for delivery in _claim(delivery_ids)}
    queue = [claimed[pk] for pk in delivery_ids if pk in claimed]
    cache = _BatchCache(to_come=Counter((d.provider_key, d.customer_id) for d in queue))
    results: dict[int, str | None] = {}
    unsettled: list[_Settlement] = []
    settled_at = time.monotonic()
    heartbeat = DELIVERIES.heartbeat(claimed, queue[0].lease_token if queue else None)
    with heartbeat:
        for position, delivery in enumerate(queue):
            late = time.monotonic() - started > settings.SWITCHYARD_SEND_BATCH_SECONDS
            if late or not heartbeat.holding():
                _release(queue[position:], enqueued_until=None)
                logger.info(
                    "deliveries.batch_handed_back count=%s reason=%s",
                    len(queue) - position,
                    "batch_time" if late else "lease_not_renewed",
                )
                break
            attempt_started = timezone.now()
            try:
                result = _attempt(delivery, cache)
            except Exception as exc:
                result = _crashed(delivery, exc, attempt_started)
            cache.to_come[delivery.provider_key, delivery.customer_id] -= 1
            if not isinstance(result, _Settlement):
                results[delivery.pk] = result
                continue
            unsettled.append(result)
            if (
                len(unsettled) >= SETTLE_GROUP
                or time.monotonic() - settled_at > SETTLE_GROUP_SECONDS
            ):
                results |= _settle(unsettled)
                unsettled, settled_at = [], time.monotonic()
        results |= _settle(unsettled)
    for version_id in cache.versions_used:
        credential_version_mark_used(version_id=version_id)
    return results


def delivery_attempt(*, delivery_id: int) -> str | None:
    """Claim, send and settle one attempt of a delivery (see ``deliveries_attempt``)."""
    return deliveries_attempt(delivery_ids=[delivery_id]).get(delivery_id)


def _dead_reason(outcome: str) -> str:
    if outcome == Outcome.AUTH_FAILED:
        return Delivery.DeadReason.AUTH_FAILED
    if outcome in (Outcome.RETRYABLE, Outcome.RATE_LIMITED):
        return Delivery.DeadReason.ATTEMPTS_EXHAUSTED
    return Delivery.DeadReason.NON_RETRYABLE


# --- manual control -------------------------------------------------------------------------


def delivery_retry(*, delivery: Delivery) -> Delivery:
    """Send a dead letter again now, with a fresh retry budget; the attempt is marked manual."""
    retried = dead_letters_retry(ids=[delivery.pk], enqueue=True)
    if not retried:
        raise ProblemConflict(
            f"Delivery {delivery.pk} is {delivery.get_status_display().lower()}; "
            "only dead letters can be retried."
        )
    delivery.refresh_from_db()
    return delivery


def delivery_cancel(*, delivery: Delivery) -> Delivery:
    if not deliveries_cancel(queryset=Delivery.objects.filter(pk=delivery.pk)):
        delivery.refresh_from_db()
        raise ProblemConflict(
            f"Delivery {delivery.pk} is {delivery.get_status_display().lower()}; only pending "
            "deliveries and dead letters can be cancelled."
        )
    delivery.refresh_from_db()
    return delivery


def deliveries_cancel(*, queryset) -> int:
    """Cancel the pending and dead deliveries among ``queryset``; in-flight ones finish first."""
    now = timezone.now()
    return queryset.filter(status__in=[Status.PENDING, Status.DEAD]).update(
        status=Status.CANCELLED, finished_at=now, enqueued_until=None, updated_at=now
    )


def dead_letters_retry(*, ids: Iterable[int] | None = None, queryset=None, enqueue=False) -> int:
    """Move dead letters back to pending (``Outbox.reopen``), each with a fresh retry budget.

    Give ``ids`` or a ``queryset`` of deliveries (only its dead ones are touched). Bulk retries
    are left to the dispatcher, which feeds the broker at a bounded rate; ``enqueue`` queues
    at once (single retries from the API or admin)."""
    if queryset is None:
        queryset = Delivery.objects.filter(pk__in=list(ids or []))
    return DELIVERIES.reopen(
        queryset,
        statuses=[Status.DEAD],
        budgets=_retry_budgets,
        enqueue=enqueue,
        manual_retry=True,
    )


def _retry_budgets(delivery_ids: list[int]) -> list[tuple[int, list[int]]]:
    """A retried dead letter gets its integration's retry policy's attempts again, not one lone
    shot: an operator retries after fixing the cause, and a transient blip should still back
    off. Split as (attempts, delivery ids)."""
    budgets: dict[int, list[int]] = {}
    rows = Delivery.objects.filter(pk__in=delivery_ids).select_related("integration")
    for delivery in rows.only("pk", "provider_key", "integration__config"):
        budget = _policy(delivery.provider_key, delivery.integration).max_attempts
        budgets.setdefault(budget, []).append(delivery.pk)
    return list(budgets.items())


# --- dispatcher upkeep ----------------------------------------------------------------------


def deliveries_relay_due() -> int:
    """Dispatcher step, every pass: queue due deliveries, customers in turn (``relay_due``)."""
    return relay_due(DELIVERIES)


def deliveries_recover_leases() -> int:
    """Dispatcher step, every pass: deliveries whose worker died mid-attempt become due again,
    or dead at their attempt limit (``Outbox.recover_expired``)."""
    return DELIVERIES.recover_expired()


def idempotency_keys_purge() -> int:
    """Forget Idempotency-Key values older than the TTL, in chunks."""
    cutoff = timezone.now() - timedelta(hours=settings.SWITCHYARD_IDEMPOTENCY_KEY_TTL_HOURS)
    old = Delivery.objects.filter(created_at__lt=cutoff, idempotency_key__isnull=False)
    total = 0
    while chunk := list(old.values_list("pk", flat=True)[:BULK_CHUNK]):
        total += Delivery.objects.filter(pk__in=chunk).update(idempotency_key=None)
    return total
