"""The delivery engine's part of the data lifecycle: retention rules for finished deliveries
(their attempts go with them) and the eraser of a customer's deliveries, attempts and
integrations.

A delivery that is pending or in flight is never expired: only succeeded, cancelled and dead
ones are, by ``finished_at`` along the ``delivery_finished`` index. A delivery whose
Idempotency-Key is still honoured is kept until upkeep forgets the key."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.utils import timezone

from customers.lifecycle import Erased, RetentionRule
from integrations.deliveries.models import Delivery, DeliveryAttempt
from integrations.deliveries.services import deliveries_cancel
from integrations.models import Integration

if TYPE_CHECKING:
    from customers.models import Customer

__all__ = (
    "DEAD_DELIVERIES",
    "ERASE_CHUNK",
    "FINISHED_DELIVERIES",
    "customer_deliveries_erase",
    "rows_update_in_chunks",
)

Status = Delivery.Status
ERASE_CHUNK = 1000


def _finished_expired(cutoff: datetime) -> QuerySet:
    return Delivery.objects.filter(
        status__in=[Status.SUCCEEDED, Status.CANCELLED],
        finished_at__lt=cutoff,
        idempotency_key__isnull=True,
    )


def _dead_expired(cutoff: datetime) -> QuerySet:
    return Delivery.objects.filter(
        status=Status.DEAD, finished_at__lt=cutoff, idempotency_key__isnull=True
    )


FINISHED_DELIVERIES = RetentionRule(
    name="deliveries_succeeded",
    setting="SWITCHYARD_RETAIN_SUCCEEDED_DAYS",
    expired=_finished_expired,
    order_by="finished_at",
    cascades=((DeliveryAttempt, "delivery"),),
)
DEAD_DELIVERIES = RetentionRule(
    name="deliveries_dead",
    setting="SWITCHYARD_RETAIN_DEAD_DAYS",
    expired=_dead_expired,
    order_by="finished_at",
    cascades=((DeliveryAttempt, "delivery"),),
)


def rows_update_in_chunks(queryset: QuerySet, **values) -> int:
    """``queryset.update(**values)`` a chunk of ``ERASE_CHUNK`` rows per statement (each its
    own short transaction), walking the primary key. The queryset should match only rows that
    still differ from ``values``. Returns how many rows changed."""
    changed, last = 0, 0
    while True:
        ids = list(
            queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:ERASE_CHUNK]
        )
        if not ids:
            return changed
        changed += queryset.model.objects.filter(pk__in=ids).update(**values)
        last = ids[-1]


# What audit keeps of a delivery: ids, action, provider, operation, status, attempts and times.
DELIVERY_ERASED = {
    "input": {},
    "result": None,
    "last_error": "",
    "idempotency_key": None,
    "request_fingerprint": "",
}
DELIVERY_HOLDS_DATA = (
    ~Q(input={})
    | Q(result__isnull=False)
    | ~Q(last_error="")
    | Q(idempotency_key__isnull=False)
    | ~Q(request_fingerprint="")
)
# Of an attempt: number, trigger, times, outcome, error class, method, response status and the
# credential version used; the URL goes too (a query string may carry data).
ATTEMPT_ERASED = {
    "request_url": "",
    "request_headers": {},
    "request_body": "",
    "response_headers": {},
    "response_body": "",
    "error": "",
}
ATTEMPT_HOLDS_DATA = (
    ~Q(request_url="")
    | ~Q(request_headers={})
    | ~Q(request_body="")
    | ~Q(response_headers={})
    | ~Q(response_body="")
    | ~Q(error="")
)


def customer_deliveries_erase(*, customer: Customer, actor=None) -> Erased:
    """Eraser of the delivery engine. Pending and dead deliveries are cancelled (nothing of the
    customer is sent any more; a dead letter keeps its reason), then every delivery not in
    flight and its attempts lose their data. A delivery in flight is left to its worker and
    reported: running the erasure again once it settled erases it too. The customer's
    integrations are deactivated and lose their configuration (base URLs, board ids)."""
    erased = Erased()
    deliveries = Delivery.objects.filter(customer=customer)
    deliveries_cancel(queryset=deliveries)
    settled = deliveries.exclude(status=Status.IN_FLIGHT)
    erased.add(
        Delivery._meta.db_table,
        rows_update_in_chunks(
            settled.filter(DELIVERY_HOLDS_DATA), **DELIVERY_ERASED, updated_at=timezone.now()
        ),
    )
    attempts = DeliveryAttempt.objects.filter(delivery__in=settled.values("pk"))
    erased.add(
        DeliveryAttempt._meta.db_table,
        rows_update_in_chunks(attempts.filter(ATTEMPT_HOLDS_DATA), **ATTEMPT_ERASED),
    )
    in_flight = deliveries.filter(status=Status.IN_FLIGHT).count()
    if in_flight:
        erased.busy[Delivery._meta.db_table] = in_flight
    integrations = Integration.objects.filter(customer=customer).filter(
        Q(active=True) | ~Q(config={})
    )
    erased.add(
        Integration._meta.db_table,
        rows_update_in_chunks(integrations, active=False, config={}, updated_at=timezone.now()),
    )
    return erased
