"""Health figures of endpoints and subscriptions for their admin pages: bounded reads (a recent
window, a capped number of rows) so a busy endpoint's page stays cheap."""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from integrations.deliveries.models import Delivery
from webhooks.models import InboundEvent, Subscription, WebhookEndpoint
from webhooks.services import OUTBOUND_ACTION

__all__ = ("Health", "endpoint_health", "event_deliveries", "subscription_health")

WINDOW = timedelta(hours=24)
FAILURES_SHOWN = 10
FAN_OUT_SHOWN = 100

Event = InboundEvent.Status
Sent = Delivery.Status


@dataclass
class Health:
    window_hours: int
    total: int = 0
    ok: int = 0
    failed: int = 0
    last_ok_at: object = None
    last_seen_at: object = None
    failures: list = field(default_factory=list)

    @property
    def success_percent(self) -> str:
        finished = self.ok + self.failed
        return f"{100 * self.ok / finished:.1f} %" if finished else "-"


def _counts(queryset) -> dict[str, int]:
    return dict(queryset.values_list("status").annotate(n=Count("pk")).order_by())


def endpoint_health(endpoint: WebhookEndpoint) -> Health:
    since = timezone.now() - WINDOW
    events = InboundEvent.objects.filter(endpoint=endpoint)
    counts = _counts(events.filter(received_at__gte=since))
    health = Health(
        window_hours=int(WINDOW.total_seconds() // 3600),
        total=sum(counts.values()),
        ok=counts.get(Event.PROCESSED, 0) + counts.get(Event.IGNORED, 0),
        failed=counts.get(Event.DEAD, 0) + counts.get(Event.FAILED, 0),
    )
    health.last_seen_at = (
        events.order_by("-received_at").values_list("received_at", flat=True).first()
    )
    health.last_ok_at = (
        events.filter(status=Event.PROCESSED)
        .order_by("-received_at")
        .values_list("processed_at", flat=True)
        .first()
    )
    health.failures = list(
        events.filter(status__in=[Event.DEAD, Event.FAILED]).order_by("-received_at")[
            :FAILURES_SHOWN
        ]
    )
    return health


def _subscription_deliveries(subscription: Subscription, since):
    # Bounded by creation time (its index) before the JSON key is looked at.
    return Delivery.objects.filter(
        action=OUTBOUND_ACTION, created_at__gte=since, input__subscription=subscription.pk
    )


def subscription_health(subscription: Subscription) -> Health:
    since = timezone.now() - WINDOW
    deliveries = _subscription_deliveries(subscription, since)
    counts = _counts(deliveries)
    health = Health(
        window_hours=int(WINDOW.total_seconds() // 3600),
        total=sum(counts.values()),
        ok=counts.get(Sent.SUCCEEDED, 0),
        failed=counts.get(Sent.DEAD, 0),
    )
    health.last_ok_at = (
        deliveries.filter(status=Sent.SUCCEEDED)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    health.last_seen_at = (
        deliveries.order_by("-created_at").values_list("created_at", flat=True).first()
    )
    health.failures = list(
        deliveries.filter(status=Sent.DEAD).order_by("-finished_at")[:FAILURES_SHOWN]
    )
    return health


def event_deliveries(event: InboundEvent) -> list[Delivery]:
    """The deliveries an inbound event fanned out to. The lookup is the expression of the
    partial index retention uses (``input ->> 'event'`` of send deliveries), so it is an index
    read on PostgreSQL."""
    return list(
        Delivery.objects.filter(action=OUTBOUND_ACTION)
        .alias(event_ref=KeyTextTransform("event", "input"))
        .filter(event_ref=str(event.pk))
        .order_by("pk")[:FAN_OUT_SHOWN]
    )
