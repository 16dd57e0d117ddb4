"""Delivery metrics for /metrics, computed at scrape time from the outbox."""

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from config.metrics import register_collector
from integrations.models import Delivery, DeliveryAttempt

__all__ = ("delivery_metrics",)

RECENT = timedelta(minutes=5)


@register_collector
def delivery_metrics():
    by_status = GaugeMetricFamily(
        "switchyard_deliveries",
        "Deliveries by status (pending + in_flight: the queue; dead: the dead-letter queue).",
        labels=["status"],
    )
    counts = dict(Delivery.objects.values_list("status").annotate(n=Count("id")))
    for status in Delivery.Status.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status

    due = Delivery.objects.filter(
        status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).count()
    yield GaugeMetricFamily(
        "switchyard_deliveries_due", "Pending deliveries whose next attempt time has passed.", due
    )

    outcomes = GaugeMetricFamily(
        "switchyard_delivery_attempts_recent",
        "Delivery attempts started in the last 5 minutes, by provider and outcome.",
        labels=["provider", "outcome"],
    )
    recent = (
        DeliveryAttempt.objects.filter(started_at__gte=timezone.now() - RECENT)
        .values_list("delivery__provider_key", "outcome")
        .annotate(n=Count("id"))
    )
    for provider, outcome, n in recent:
        outcomes.add_metric([provider, outcome], n)
    yield outcomes
