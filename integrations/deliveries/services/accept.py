"""Accepting a delivery: validate and route it, store it, queue it, and answer a repeated
Idempotency-Key with the delivery it first created."""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone
from rest_framework.exceptions import APIException, ValidationError

from config import tracing
from config.api.problems import ProblemConflict
from config.db import insert_one, one_or_none
from config.prepared import PreparedRead
from config.request_id import current_request_id
from customers.models import ApiKey, Customer
from customers.selectors import customer_by_slug, customers_visible_to
from integrations.deliveries.models import Delivery
from integrations.deliveries.prepare import (
    NOT_READ,
    PreparedCall,
    action_prepare,
    operation_provider_key,
)
from integrations.deliveries.services.outbox import DELIVERIES
from integrations.deliveries.services.policy import retry_policy
from integrations.models import Integration
from integrations.outbox import enqueued_until
from integrations.selectors import customer_with_active_integration

__all__ = (
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "BatchInvalid",
    "BatchItemResult",
    "IdempotencyKeyReused",
    "deliveries_create_batch",
    "delivery_create",
)

logger = structlog.stdlib.get_logger(__name__)

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
    not_before: datetime | None = None,
    internal: bool = False,
) -> tuple[Delivery, bool]:
    """Validate and store a delivery, queueing it on commit. Returns (delivery, replayed).

    ``not_before``: not sent before then (the relay queues it when it is due; cancellable until
    sent). ``internal``: the platform's own call (fan-out), which may use internal operations.

    With ``idempotency_key`` (Stripe semantics, scoped to the API key): the same key and body
    return the original delivery; a different body is a 422; a concurrent first request still
    being created is a 409."""
    _validate_idempotency_key(idempotency_key)
    fingerprint = _fingerprint(customer, action, input, not_before)
    if (
        idempotency_key
        and api_key is None
        and (existing := _existing_for_key(None, idempotency_key))
    ):
        # The platform's own calls: the unique constraint holds NULL api_keys distinct.
        return _replay(existing, fingerprint, api_key)
    # A new key is the common case: its INSERT is the lookup (a taken key fails it), and a
    # request that no longer validates still replays what its key created.
    try:
        customer_row, integration = _active_customer(
            api_key, customer, provider_key=operation_provider_key(action)
        )
        call = action_prepare(
            customer=customer_row,
            action=action,
            input=input,
            allow_internal=internal,
            active_integration=integration,
        )
    except ValidationError:
        if idempotency_key and (existing := _existing_for_key(api_key, idempotency_key)):
            return _replay(existing, fingerprint, api_key)
        raise
    delivery = _new_delivery(
        call,
        customer=customer_row,
        api_key=api_key,
        action=action,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        not_before=not_before,
    )
    try:
        _store(delivery)
    except IntegrityError:
        if not idempotency_key:
            raise
        return _replay_raced(api_key, idempotency_key, fingerprint)
    logger.info(
        "deliveries.accepted",
        delivery_id=delivery.pk,
        customer=customer,
        provider=delivery.provider_key,
        action=action,
    )
    return delivery, False


def _replay_raced(api_key: ApiKey | None, idempotency_key: str, fingerprint: str):
    """The insert lost a race for its Idempotency-Key: the winner's delivery, once visible."""
    existing = _existing_for_key(api_key, idempotency_key)
    if existing is None:
        raise ProblemConflict(
            "A request with this Idempotency-Key is still being processed; retry shortly."
        )
    return _replay(existing, fingerprint, api_key)


@dataclass(frozen=True)
class BatchItemResult:
    """One item of a batch: its delivery (``replayed`` when its Idempotency-Key had one), or
    the error that kept it out."""

    delivery: Delivery | None = None
    replayed: bool = False
    error: APIException | None = None


class BatchInvalid(ValidationError):
    """An atomic batch with an item that does not validate: nothing was stored."""


def deliveries_create_batch(
    *, api_key: ApiKey | None, items: list[dict], atomic: bool
) -> list[BatchItemResult]:
    """Accept many deliveries in one request: one result per item, in order.

    Each item (``customer``, ``action``, ``input``, optional ``idempotency_key`` and
    ``not_before``) is validated as a single POST's body is, and its key has the same
    semantics (a key repeated within the batch replays the first item). The new deliveries are
    inserted in one statement and one transaction; the relay queues them, customers in turn.
    With ``atomic`` nothing is stored unless every item validates (``BatchInvalid``)."""
    memo = _BatchMemo(api_key, items)
    results: list[BatchItemResult | None] = []
    new: list[tuple[int, Delivery]] = []
    for index, item in enumerate(items):
        try:
            outcome = memo.delivery_for(index, item)
        except APIException as exc:
            results.append(BatchItemResult(error=exc))
            continue
        results.append(outcome if isinstance(outcome, BatchItemResult) else None)
        if isinstance(outcome, Delivery):
            new.append((index, outcome))
    if atomic and (invalid := {i: r.error for i, r in enumerate(results) if r and r.error}):
        raise BatchInvalid({"items": {str(i): _error_detail(e) for i, e in invalid.items()}})
    for index, result in _stored(api_key, new, memo.fingerprints, atomic=atomic):
        results[index] = result
    for index, first in memo.repeats.items():  # a key repeated in the batch: the first's result
        results[index] = BatchItemResult(
            delivery=results[first].delivery, replayed=True, error=results[first].error
        )
    logger.info("deliveries.accepted_batch", items=len(items), new=len(new))
    return results


class _BatchMemo:
    """What items of one batch share: customers by slug, deliveries already holding their keys,
    and the first item of each key."""

    def __init__(self, api_key: ApiKey | None, items: list[dict]):
        self.api_key = api_key
        self.customers: dict[str, Customer | APIException] = {}
        keys = {item["idempotency_key"] for item in items if item.get("idempotency_key")}
        self.existing = _existing_for_keys(api_key, keys)
        self.first_with_key: dict[str, int] = {}
        self.fingerprints: dict[int, str] = {}
        self.repeats: dict[int, int] = {}

    def delivery_for(self, index: int, item: dict) -> Delivery | BatchItemResult | None:
        key, not_before = item.get("idempotency_key"), item.get("not_before")
        fingerprint = _fingerprint(item["customer"], item["action"], item["input"], not_before)
        self.fingerprints[index] = fingerprint
        if key in self.existing:
            delivery, replayed = _replay(self.existing[key], fingerprint, self.api_key)
            return BatchItemResult(delivery=delivery, replayed=replayed)
        if key in self.first_with_key:
            first = self.first_with_key[key]
            if self.fingerprints[first] != fingerprint:
                raise IdempotencyKeyReused(
                    {"idempotency_key": [f"Item {first} of this batch used this key."]}
                )
            self.repeats[index] = first
            return None
        call = action_prepare(
            customer=self._customer(item["customer"]), action=item["action"], input=item["input"]
        )
        if key:
            self.first_with_key[key] = index
        return _new_delivery(
            call,
            customer=self._customer(item["customer"]),
            api_key=self.api_key,
            action=item["action"],
            idempotency_key=key,
            fingerprint=fingerprint,
            not_before=not_before,
        )

    def _customer(self, slug: str) -> Customer:
        if slug not in self.customers:
            try:
                self.customers[slug] = _active_customer(self.api_key, slug)[0]
            except APIException as exc:
                self.customers[slug] = exc
        found = self.customers[slug]
        if isinstance(found, APIException):
            raise found
        return found


def _stored(api_key, new: list[tuple[int, Delivery]], fingerprints: dict, *, atomic: bool):
    """Insert the batch's new deliveries in one statement; when a key was taken meanwhile, an
    atomic batch is a 409 and another inserts item by item, answering that item as a replay."""
    try:
        with transaction.atomic():
            Delivery.objects.bulk_create([delivery for _, delivery in new])
    except IntegrityError:
        if atomic:
            raise ProblemConflict(
                "An Idempotency-Key of this batch was taken while it was stored; retry it."
            ) from None
        for index, delivery in new:
            yield index, _stored_one(api_key, delivery, fingerprints[index])
        return
    for index, delivery in new:
        yield index, BatchItemResult(delivery=delivery)


def _stored_one(api_key, delivery: Delivery, fingerprint: str) -> BatchItemResult:
    try:
        with transaction.atomic():
            insert_one(delivery)
    except IntegrityError:
        try:
            existing, replayed = _replay_raced(api_key, delivery.idempotency_key, fingerprint)
        except APIException as exc:
            return BatchItemResult(error=exc)
        return BatchItemResult(delivery=existing, replayed=replayed)
    return BatchItemResult(delivery=delivery)


def _error_detail(error: APIException):
    return error.detail if isinstance(error, ValidationError) else {"detail": [str(error.detail)]}


def _existing_for_keys(api_key: ApiKey | None, keys: set[str]) -> dict[str, Delivery]:
    if not keys:
        return {}
    found = Delivery.objects.filter(api_key=api_key, idempotency_key__in=keys).order_by()
    return {delivery.idempotency_key: delivery for delivery in found}


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


def _fingerprint(customer: str, action: str, input: dict, not_before: datetime | None) -> str:
    request = {"customer": customer, "action": action, "input": input}
    if not_before is not None:  # absent before scheduling existed: older fingerprints hold
        request["not_before"] = not_before.astimezone(UTC).isoformat()
    canonical = json.dumps(request, sort_keys=True, default=str)
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


def _active_customer(
    api_key: ApiKey | None, slug: str, *, provider_key: str | None = None
) -> tuple[Customer, Integration | object | None]:
    """The customer, and with ``provider_key`` its active integration of that provider, read
    in the same query (else ``NOT_READ``)."""
    if provider_key:
        customer, integration = customer_with_active_integration(
            api_key=api_key, slug=slug, provider_key=provider_key
        )
    else:
        customer, integration = customer_by_slug(api_key=api_key, slug=slug), NOT_READ
    if customer is None:
        raise ValidationError({"customer": [f"Unknown customer '{slug}'."]})
    if not customer.active:
        raise ValidationError({"customer": [f"Customer '{slug}' is inactive."]})
    return customer, integration


def _new_delivery(
    call: PreparedCall,
    *,
    customer: Customer,
    api_key: ApiKey | None,
    action: str,
    idempotency_key: str | None,
    fingerprint: str,
    not_before: datetime | None,
) -> Delivery:
    now = timezone.now()
    return Delivery(
        customer=customer,
        api_key=api_key,
        action=action,
        provider_key=call.provider_key,
        operation=call.operation,
        integration_id=call.integration_id,
        input=call.input,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        request_id=current_request_id(),
        trace_parent=tracing.traceparent(),
        attempt_limit=retry_policy(call.provider_key, call.integration).max_attempts,
        next_attempt_at=max(now, not_before) if not_before else now,
    )


def _store(delivery: Delivery) -> None:
    """Insert the delivery; raises IntegrityError when its Idempotency-Key is taken.

    While fewer of its customer's deliveries wait in the broker than a cluster has workers (so
    a worker takes it within moments), a delivery due now goes to the broker at once, as a task
    of its own: the lowest latency. Beyond that (the workers are behind), and when it is
    scheduled, the relay takes it when due, in batches (a task per batch costs a worker far less
    per delivery than a task each, so a steady stream does not back up behind single-delivery
    tasks) and in turn with other customers' work. Deliveries in flight leave the broker's room
    free, not the customer's cap (SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT): a customer near it waits
    for the relay. The INSERT itself counts (``enqueued_until`` stays set only while both hold):
    no round trip of its own."""
    in_broker_limit = min(settings.Q_CLUSTER["workers"], settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT)
    if delivery.next_attempt_at <= timezone.now():
        delivery.enqueued_until = enqueued_until()
    queued_sql, queued_params = _CUSTOMER_QUEUED.sql(
        customer_id=delivery.customer_id, limit=in_broker_limit
    )
    flying_sql, flying_params = _CUSTOMER_IN_FLIGHT_BEYOND.sql(
        customer_id=delivery.customer_id,
        offset=settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT - in_broker_limit,
    )
    # The ORM's compiled statements; every value is a parameter. The queued count comes first:
    # when it fails (the workers are behind) the in-flight probe is not run.
    room = f"(SELECT COUNT(*) FROM ({queued_sql}) queued) < %s AND NOT EXISTS ({flying_sql})"  # noqa: S608
    conditions = {"enqueued_until": (room, [*queued_params, in_broker_limit, *flying_params])}
    quiet = delivery.idempotency_key is not None  # a client's repeat is no server error
    if transaction.get_connection().in_atomic_block:
        # In the caller's transaction (fan-out) a savepoint keeps a taken Idempotency-Key from
        # breaking it; alone, the INSERT commits itself, without BEGIN and COMMIT round trips.
        with transaction.atomic():
            insert_one(delivery, only_if=conditions, quiet_conflict=quiet)
    else:
        insert_one(delivery, only_if=conditions, quiet_conflict=quiet)
    if delivery.enqueued_until is not None:
        transaction.on_commit(lambda: DELIVERIES.enqueue([delivery.pk]))


_CUSTOMER_QUEUED = PreparedRead(
    lambda customer_id, limit: (
        Delivery.objects.filter(
            customer_id=customer_id, status=Status.PENDING, enqueued_until__gt=Now()
        )
        .order_by()
        .values_list("pk")[:limit]
    ),
    literals=("limit",),
)
# A row here means the customer has more in flight than its cap leaves room for beside the
# broker's: read up to the cap's worth, which only a large cluster ever has in flight.
_CUSTOMER_IN_FLIGHT_BEYOND = PreparedRead(
    lambda customer_id, offset: (
        Delivery.objects.filter(customer_id=customer_id, status=Status.IN_FLIGHT)
        .order_by()
        .values_list("pk")[offset : offset + 1]
    ),
    literals=("offset",),
)
