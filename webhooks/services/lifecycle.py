"""The webhooks app's part of the data lifecycle: retention of inbound events and the eraser of
a customer's endpoints, events and subscriptions.

An inbound event is expired once finished (processed or ignored, after
``SWITCHYARD_RETAIN_INBOUND_DAYS``; dead, after ``SWITCHYARD_RETAIN_DEAD_DAYS``) and only while
no delivery refers to it: a kept fan-out delivery, a dead letter above all, may be retried,
and its send reads the event's envelope."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from customers.lifecycle import Erased, RetentionRule
from integrations.deliveries.models import INBOUND_EVENT_REF, SEND_ACTION, Delivery
from integrations.lifecycle import rows_update_in_chunks
from webhooks.models import InboundEvent, Subscription, WebhookEndpoint

if TYPE_CHECKING:
    from customers.models import Customer

__all__ = ("DEAD_INBOUND_EVENTS", "FINISHED_INBOUND_EVENTS", "customer_webhooks_erase")

Status = InboundEvent.Status


def _referenced() -> Exists:
    """A delivery still refers to the event (the ``delivery_inbound_event`` index)."""
    return Exists(
        Delivery.objects.filter(action=SEND_ACTION)
        .annotate(event_ref=INBOUND_EVENT_REF)
        .filter(event_ref=Cast(OuterRef("pk"), CharField()))
    )


def _finished_expired(cutoff: datetime) -> QuerySet:
    return InboundEvent.objects.filter(
        status__in=[Status.PROCESSED, Status.IGNORED], received_at__lt=cutoff
    ).filter(~_referenced())


def _dead_expired(cutoff: datetime) -> QuerySet:
    return InboundEvent.objects.filter(status=Status.DEAD, received_at__lt=cutoff).filter(
        ~_referenced()
    )


FINISHED_INBOUND_EVENTS = RetentionRule(
    name="inbound_events",
    setting="SWITCHYARD_RETAIN_INBOUND_DAYS",
    expired=_finished_expired,
    order_by="received_at",
)
DEAD_INBOUND_EVENTS = RetentionRule(
    name="inbound_events_dead",
    setting="SWITCHYARD_RETAIN_DEAD_DAYS",
    expired=_dead_expired,
    order_by="received_at",
)

# What audit keeps of an event: ids (its own, the provider's), endpoint, provider, type, status,
# attempts and times; the body, headers, envelope, error and sender's address go.
EVENT_ERASED = {"body": b"", "headers": {}, "envelope": None, "error": "", "remote_ip": None}
EVENT_HOLDS_DATA = (
    ~Q(body=b"")
    | ~Q(headers={})
    | Q(envelope__isnull=False)
    | ~Q(error="")
    | Q(remote_ip__isnull=False)
)
LIVE = [Status.RECEIVED, Status.FAILED]


def customer_webhooks_erase(*, customer: Customer, actor=None) -> Erased:
    """Eraser of the webhooks app. The customer's endpoints stop receiving (404) and its
    subscriptions stop sending and forget their URL; its events waiting to be processed become
    dead letters (nothing is left to process), and every event not being processed right now
    loses its data. One being processed is reported busy: erasing again afterwards gets it."""
    erased, now = Erased(), timezone.now()
    endpoints = WebhookEndpoint.objects.filter(customer=customer)
    erased.add(WebhookEndpoint._meta.db_table, endpoints.filter(active=True).update(active=False))
    events = InboundEvent.objects.filter(endpoint__in=endpoints.values("pk"))
    rows_update_in_chunks(
        events.filter(status__in=LIVE),
        status=Status.DEAD,
        processed_at=now,
        next_attempt_at=None,
        enqueued_until=None,
    )
    settled = events.exclude(status=Status.PROCESSING)
    erased.add(
        InboundEvent._meta.db_table,
        rows_update_in_chunks(settled.filter(EVENT_HOLDS_DATA), **EVENT_ERASED),
    )
    processing = events.filter(status=Status.PROCESSING).count()
    if processing:
        erased.busy[InboundEvent._meta.db_table] = processing
    subscriptions = Subscription.objects.filter(customer=customer).filter(
        Q(active=True) | ~Q(url="")
    )
    erased.add(
        Subscription._meta.db_table,
        subscriptions.update(
            active=False, url="", disabled_at=now, disabled_reason="Customer erased."
        ),
    )
    return erased
