"""Writes of the delivery engine: accept, attempt, retry, cancel, and the dispatcher's upkeep.

Every state change is a conditional UPDATE on the delivery row (status, lease token), so two
workers or two dispatchers racing on one delivery cannot both act on it."""

import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import zip_longest

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import ValidationError

from config.api.problems import ProblemConflict
from config.db import update_fields_many
from customers.models import ApiKey, Customer
from customers.selectors import customers_visible_to
from integrations import egress
from integrations.actions import CallOutcome, PreparedCall, action_prepare, operation_execute
from integrations.capabilities import CAPABILITIES
from integrations.limits.services import Deferral, SendPermits, rate_limit_quotas, send_settled
from integrations.models import Delivery, DeliveryAttempt, Integration
from integrations.outbox import (
    LeaseHeartbeat,
    enqueue_batches,
    enqueued_until,
    requeue_unclaimed,
)
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
# A worker may claim a delivery this early, so clocks a little apart do not delay it a tick.
CLAIM_TOLERANCE = timedelta(seconds=1)
TASK_PATH = "integrations.tasks.delivery_send_batch"
# Attempts are recorded and settled in groups of up to this many, or this often: fewer commits,
# while a worker that dies leaves at most one group sent but unsettled (sent again once its
# lease expires, with the same idempotency key).
SETTLE_GROUP = 20
SETTLE_GROUP_SECONDS = 0.25
# The relay serves at most this many customers per pass, those waiting longest first.
RELAY_CUSTOMERS_PER_PASS = 100

Status = Delivery.Status


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


def _enqueue(delivery_ids: Iterable[int]) -> None:
    enqueue_batches(
        model=Delivery,
        task_path=TASK_PATH,
        ids=list(delivery_ids),
        batch_size=settings.SWITCHYARD_SEND_BATCH,
    )


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
                transaction.on_commit(lambda: _enqueue([delivery.pk]))
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
    """Take the lease on the due deliveries among ``delivery_ids`` in one conditional UPDATE
    and load them; rows someone else holds, or that are not due, are left alone (so a
    duplicate task finds nothing to claim).

    The lease is short (SWITCHYARD_LEASE_SECONDS): ``deliveries_attempt`` renews it with a
    heartbeat for as long as the batch runs, so it expires a lease after the worker died."""
    now = timezone.now()
    token = uuid.uuid4()
    lease = settings.SWITCHYARD_LEASE_SECONDS
    Delivery.objects.filter(
        pk__in=delivery_ids, status=Status.PENDING, next_attempt_at__lte=now + CLAIM_TOLERANCE
    ).update(
        status=Status.IN_FLIGHT,
        lease_token=token,
        lease_until=now + timedelta(seconds=lease),
        attempts=F("attempts") + 1,
        enqueued_until=None,
    )
    return list(
        Delivery.objects.select_related("customer__region", "integration").filter(lease_token=token)
    )


def _release(deliveries: list[Delivery], **changes) -> int:
    """Give claimed deliveries back as pending, un-counting the attempt they never made."""
    tokens = {delivery.lease_token for delivery in deliveries}
    return Delivery.objects.filter(
        pk__in=[delivery.pk for delivery in deliveries], lease_token__in=tokens
    ).update(
        status=Status.PENDING,
        attempts=F("attempts") - 1,
        lease_token=None,
        lease_until=None,
        **changes,
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


def _settle(settlements: list[_Settlement]) -> dict[int, str | None]:
    """Record attempts and settle deliveries in one transaction: one INSERT for the attempts and
    one batched UPDATE per resulting status (``update_fields_many``), each only where this worker
    still holds the lease (rows locked here)."""
    if not settlements:
        return {}
    tokens = {s.delivery.lease_token for s in settlements}
    with transaction.atomic():
        held = set(
            Delivery.objects.select_for_update()
            .filter(lease_token__in=tokens, pk__in=[s.delivery.pk for s in settlements])
            .values_list("pk", flat=True)
        )
        # Every attempt is logged, including one whose lease was lost: the provider saw it.
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
                fields = ["status", "lease_token", "lease_until", "manual_retry", "updated_at"]
                update_fields_many([s.delivery for s in group], [*fields, *group[0].changes])
    results = {}
    for settlement in settlements:
        delivery = settlement.delivery
        if delivery.pk not in held:
            # The lease expired mid-attempt and another worker took over; its result wins.
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
    *, delivery: Delivery, started_at, trigger: str, outcome, resolved, next_delay
) -> DeliveryAttempt:
    """The attempt's log row, saved with the others of its settle group."""
    request, response = outcome.request, outcome.response
    return DeliveryAttempt(
        delivery=delivery,
        number=delivery.attempts,
        trigger=trigger,
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

    trigger = (
        DeliveryAttempt.Trigger.MANUAL
        if delivery.manual_retry
        else DeliveryAttempt.Trigger.AUTOMATIC
    )
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
    decision = decide_retry(
        policy=_policy(delivery.provider_key, delivery.integration),
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
        trigger=trigger,
        outcome=outcome,
        resolved=resolved,
        next_delay=decision.delay_seconds,
    )
    return _Settlement(delivery, attempt, status, changes, outcome.outcome)


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
    heartbeat = LeaseHeartbeat(
        model=Delivery,
        ids=list(claimed),
        token=queue[0].lease_token if queue else None,
        held=Q(status=Status.IN_FLIGHT),
    )
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
            result = _attempt(delivery, cache)
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
    """Move dead letters back to pending, in chunks so that any number fits in bounded memory.

    Give ``ids`` or a ``queryset`` of deliveries (only its dead ones are touched). Bulk retries
    are left to the dispatcher, which feeds the broker at a bounded rate; ``enqueue`` queues
    at once (single retries from the API or admin)."""
    if queryset is None:
        queryset = Delivery.objects.filter(pk__in=list(ids or []))
    dead = queryset.filter(status=Status.DEAD).order_by("pk")
    total, last_id = 0, 0
    while True:
        chunk = list(dead.filter(pk__gt=last_id).values_list("pk", flat=True)[:BULK_CHUNK])
        if not chunk:
            return total
        last_id = chunk[-1]
        now = timezone.now()
        with transaction.atomic():
            total += Delivery.objects.filter(pk__in=chunk, status=Status.DEAD).update(
                status=Status.PENDING,
                attempt_limit=F("attempts") + _manual_retry_budget(),
                next_attempt_at=now,
                enqueued_until=enqueued_until() if enqueue else None,
                dead_reason="",
                finished_at=None,
                manual_retry=True,
                updated_at=now,
            )
            if enqueue:
                transaction.on_commit(lambda chunk=chunk: _enqueue(chunk))
        logger.info("deliveries.dead_letters_retried count=%s", len(chunk))


def _manual_retry_budget() -> int:
    # A retried dead letter gets the default policy's attempts again, not one lone shot:
    # an operator retries after fixing the cause, and a transient blip should still back off.
    return RetryPolicy().max_attempts


# --- dispatcher upkeep ----------------------------------------------------------------------


def _customers_waiting(due) -> list[int]:
    """Customers with due deliveries, those waiting longest first. One index probe per customer
    (``delivery_customer_due``) rather than grouping every due row: a pass costs the same with a
    backlog of a thousand deliveries or a million."""
    first_due = (
        due.filter(customer_id=OuterRef("pk")).order_by("next_attempt_at").values("next_attempt_at")
    )
    return list(
        Customer.objects.annotate(first=Subquery(first_due[:1]))
        .filter(first__isnull=False)
        .order_by("first")
        .values_list("pk", flat=True)[:RELAY_CUSTOMERS_PER_PASS]
    )


def deliveries_relay_due() -> int:
    """Queue due deliveries that have no task in the broker, keeping at most
    SWITCHYARD_RELAY_MAX_QUEUED queued and at most SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT per customer
    queued or in flight, taking customers in turn (round robin), so one customer's burst never
    queues ahead of another's single delivery. Several dispatchers may run: rows are claimed
    with SKIP LOCKED where the database has it (SQLite serialises writers anyway).

    Deliveries queued a few seconds ago whose broker message is gone (flushed broker, killed
    cluster) are queued again first (``requeue_unclaimed``), not after the enqueue timeout."""
    requeue_unclaimed(
        queued=Delivery.objects.filter(status=Status.PENDING),
        batch_size=settings.SWITCHYARD_SEND_BATCH,
    )
    now = timezone.now()
    queued = Q(status=Status.PENDING, enqueued_until__gt=now)
    room = settings.SWITCHYARD_RELAY_MAX_QUEUED - Delivery.objects.filter(queued).count()
    due = Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).filter(
        Q(enqueued_until__isnull=True) | Q(enqueued_until__lt=now)
    )
    waiting = _customers_waiting(due)
    busy = dict(
        Delivery.objects.filter(queued | Q(status=Status.IN_FLIGHT))
        .order_by()
        .values_list("customer_id")
        .annotate(n=Count("pk"))
    )
    cap = settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT
    quota = {c: cap - busy.get(c, 0) for c in waiting if busy.get(c, 0) < cap}
    relayed = 0
    while room > 0 and quota:
        limit = min(room, settings.SWITCHYARD_RELAY_BATCH)
        with transaction.atomic():
            groups = [
                list(
                    due.filter(customer_id=customer)
                    .order_by("next_attempt_at")
                    .select_for_update(skip_locked=True)
                    .values_list("pk", "customer_id")[: min(left, limit)]
                )
                for customer, left in quota.items()
            ]
            picked = [row for turn in zip_longest(*groups) for row in turn if row][:limit]
            if not picked:
                break
            ids = [pk for pk, _ in picked]
            Delivery.objects.filter(pk__in=ids).update(enqueued_until=enqueued_until())
        _enqueue(ids)
        for _, customer in picked:
            quota[customer] -= 1
        quota = {c: left for c, left in quota.items() if left > 0}
        relayed += len(ids)
        room -= len(ids)
    return relayed


def deliveries_recover_leases() -> int:
    """Deliveries whose worker died mid-attempt (lease expired: its heartbeat stopped) become
    due again, or dead when that was their last allowed attempt. The dispatcher runs it every
    pass: an indexed EXISTS, and the UPDATEs only when a lease expired."""
    now = timezone.now()
    expired = Delivery.objects.filter(status=Status.IN_FLIGHT, lease_until__lt=now)
    if not expired.exists():
        return 0
    lost = "Worker lost during the attempt (lease expired); the provider may have received it."
    dead = expired.filter(attempts__gte=F("attempt_limit")).update(
        status=Status.DEAD,
        dead_reason=Delivery.DeadReason.WORKER_LOST,
        last_error=lost,
        lease_token=None,
        lease_until=None,
        finished_at=now,
        updated_at=now,
    )
    retried = expired.update(
        status=Status.PENDING,
        next_attempt_at=now,
        enqueued_until=None,
        last_error=lost,
        lease_token=None,
        lease_until=None,
        updated_at=now,
    )
    if dead or retried:
        logger.warning("deliveries.leases_recovered retried=%s dead=%s", retried, dead)
    return dead + retried


def idempotency_keys_purge() -> int:
    """Forget Idempotency-Key values older than the TTL, in chunks."""
    cutoff = timezone.now() - timedelta(hours=settings.SWITCHYARD_IDEMPOTENCY_KEY_TTL_HOURS)
    old = Delivery.objects.filter(created_at__lt=cutoff, idempotency_key__isnull=False)
    total = 0
    while chunk := list(old.values_list("pk", flat=True)[:BULK_CHUNK]):
        total += Delivery.objects.filter(pk__in=chunk).update(idempotency_key=None)
    return total
