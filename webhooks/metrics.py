"""Webhook metrics for /metrics, computed at scrape time from endpoints and the inbound log."""

from django.db.models import Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from config.metrics import gauge_by_status, register_collector
from webhooks.models import InboundEvent, WebhookEndpoint

__all__ = ("webhook_metrics",)

PENDING = (InboundEvent.Status.RECEIVED, InboundEvent.Status.FAILED)


@register_collector
def webhook_metrics():
    rejected = GaugeMetricFamily(
        "switchyard_webhook_signatures_rejected",
        "Webhook requests refused with 401 (bad or stale signature), by provider: the sum of "
        "each endpoint's running total, never reset; watch its increase.",
        labels=["provider"],
    )
    totals = WebhookEndpoint.objects.values_list("provider").annotate(n=Sum("rejected_signatures"))
    for provider, n in totals.order_by("provider"):
        rejected.add_metric([provider], n)
    yield rejected

    # By status only: a provider label would read every row of the event log (bodies and all)
    # at each scrape, where the status alone is counted from the (status, next_attempt_at) index.
    yield gauge_by_status(
        "switchyard_inbound_events",
        "Inbound events by status (received + failed: not processed yet; processing: held by a "
        "worker; dead: the inbound dead-letter queue).",
        InboundEvent.objects.all(),
        InboundEvent.Status.values,
    )

    due = InboundEvent.objects.filter(
        status__in=PENDING, next_attempt_at__lte=timezone.now()
    ).count()
    yield GaugeMetricFamily(
        "switchyard_inbound_events_due",
        "Inbound events received or failed whose next processing attempt time has passed "
        "(queued ones included).",
        due,
    )
