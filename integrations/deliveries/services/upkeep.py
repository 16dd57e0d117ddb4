"""The dispatcher's steps for deliveries: relay due work, recover lost leases, forget old
Idempotency-Key values."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from integrations.deliveries.models import Delivery
from integrations.deliveries.services.outbox import DELIVERIES
from integrations.outbox import relay_due

__all__ = ("deliveries_recover_leases", "deliveries_relay_due", "idempotency_keys_purge")

BULK_CHUNK = 1000


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
