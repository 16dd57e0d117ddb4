"""Delivery metrics for /metrics, computed at scrape time from the outbox."""

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from config.metrics import gauge_by_status, register_collector
from integrations.deliveries.models import Delivery, DeliveryAttempt
from integrations.models import CircuitBreaker

__all__ = ("delivery_metrics",)

RECENT = timedelta(minutes=5)


@register_collector
def delivery_metrics():
    yield gauge_by_status(
        "switchyard_deliveries",
        "Deliveries by status (pending + in_flight: the queue; dead: the dead-letter queue).",
        Delivery.objects.all(),
        Delivery.Status.values,
    )

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

    # The breakers' shared state (the table mirrors Redis too), whichever process changed it.
    breakers = GaugeMetricFamily(
        "switchyard_breaker_open",
        "1 while the circuit breaker of a provider and region is open or half-open (probing).",
        labels=["provider", "region"],
    )
    for provider, region, state in CircuitBreaker.objects.values_list(
        "provider_key", "region", "state"
    ):
        breakers.add_metric([provider, region], 0 if state == CircuitBreaker.State.CLOSED else 1)
    yield breakers
