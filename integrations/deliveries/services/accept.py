"""Accepting a delivery: validate and route it, store it, queue it, and answer a repeated
Idempotency-Key with the delivery it first created."""

import hashlib
import json
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from config.api.problems import ProblemConflict
from config.db import PreparedRead, insert_one, one_or_none
from customers.models import ApiKey, Customer
from customers.selectors import customer_by_slug, customers_visible_to
from integrations.deliveries.models import Delivery
from integrations.deliveries.prepare import PreparedCall, action_prepare
from integrations.deliveries.services.outbox import DELIVERIES
from integrations.deliveries.services.policy import retry_policy
from integrations.outbox import enqueued_until

__all__ = ("IDEMPOTENCY_KEY_MAX_LENGTH", "IdempotencyKeyReused", "delivery_create")

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX_LENGTH = 255

Status = Delivery.Status


class IdempotencyKeyReused(ValidationError):
    status_code = 422
    default_code = "idempotency-key-reused"


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
    _validate_idempotency_key(idempotency_key)
    fingerprint = _fingerprint(customer=customer, action=action, input=input)
    if idempotency_key and (existing := _existing_for_key(api_key, idempotency_key)):
        return _replay(existing, fingerprint, api_key)
    customer_row = _active_customer(api_key, customer)
    call = action_prepare(
        customer=customer_row, action=action, input=input, allow_internal=internal
    )
    try:
        delivery = _store(
            call,
            customer=customer_row,
            api_key=api_key,
            action=action,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = _existing_for_key(api_key, idempotency_key)
        if existing is None:
            raise ProblemConflict(
                "A request with this Idempotency-Key is still being processed; retry shortly."
            ) from None
        return _replay(existing, fingerprint, api_key)
    logger.info(
        "deliveries.accepted delivery=%s customer=%s action=%s", delivery.pk, customer, action
    )
    return delivery, False


_BY_IDEMPOTENCY_KEY = PreparedRead(
    lambda api_key_id, idempotency_key: Delivery.objects.filter(
        api_key=api_key_id, idempotency_key=idempotency_key
    ).order_by()
)


def _existing_for_key(api_key: ApiKey | None, idempotency_key: str) -> Delivery | None:
    if api_key is None:  # the platform's own calls
        return one_or_none(Delivery.objects.filter(api_key=None, idempotency_key=idempotency_key))
    found = _BY_IDEMPOTENCY_KEY.objects(api_key_id=api_key.pk, idempotency_key=idempotency_key)
    return found[0] if found else None


def _validate_idempotency_key(idempotency_key: str | None) -> None:
    if idempotency_key is not None and not 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationError(
            {"Idempotency-Key": [f"Must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters long."]}
        )


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


def _active_customer(api_key: ApiKey | None, slug: str) -> Customer:
    customer = customer_by_slug(api_key=api_key, slug=slug)
    if customer is None:
        raise ValidationError({"customer": [f"Unknown customer '{slug}'."]})
    if not customer.active:
        raise ValidationError({"customer": [f"Customer '{slug}' is inactive."]})
    return customer


def _store(
    call: PreparedCall,
    *,
    customer: Customer,
    api_key: ApiKey | None,
    action: str,
    idempotency_key: str | None,
    fingerprint: str,
) -> Delivery:
    """Create the delivery row; raises IntegrityError when its Idempotency-Key is taken."""
    policy = retry_policy(call.provider_key, call.integration)
    # While its customer has fewer deliveries queued or in flight than a cluster has workers
    # (one is likely idle), a delivery goes to the broker at once, as a task of its own: the
    # lowest latency. Beyond that the relay takes it on its next pass, in batches (a task per
    # batch costs a worker far less per delivery than a task each, so a steady stream does not
    # back up behind single-delivery tasks) and in turn with other customers' work.
    in_broker_limit = min(settings.Q_CLUSTER["workers"], settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT)
    direct = _customer_queued(customer.pk, up_to=in_broker_limit) < in_broker_limit
    delivery = Delivery(
        customer=customer,
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
    if transaction.get_connection().in_atomic_block:
        # In the caller's transaction (fan-out) a savepoint keeps a taken Idempotency-Key from
        # breaking it; alone, the INSERT commits itself, without BEGIN and COMMIT round trips.
        with transaction.atomic():
            insert_one(delivery)
    else:
        insert_one(delivery)
    if direct:
        transaction.on_commit(lambda: DELIVERIES.enqueue([delivery.pk]))
    return delivery


_CUSTOMER_QUEUED = PreparedRead(
    lambda customer_id, limit: (
        Delivery.objects.filter(
            Q(status=Status.PENDING, enqueued_until__gt=Now()) | Q(status=Status.IN_FLIGHT),
            customer_id=customer_id,
        )
        .order_by()
        .values_list("pk")[:limit]
    ),
    literals=("limit",),
)


def _customer_queued(customer_id: int, *, up_to: int) -> int:
    """Deliveries of a customer in the broker or in flight (deferred ones wait in the table),
    counted up to ``up_to``: the answer needed, at a cost that does not grow with a backlog."""
    return len(_CUSTOMER_QUEUED.rows(customer_id=customer_id, limit=up_to))
