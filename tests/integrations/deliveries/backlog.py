"""Many deliveries at once, written in one statement: a backlog for tests of plans, lists and
the relay."""

from django.utils import timezone

from integrations.models import Delivery

__all__ = ("deliveries_bulk",)


def deliveries_bulk(customer, count: int, **fields) -> list[Delivery]:
    """``count`` generic HTTP deliveries of ``customer``, due now unless ``fields`` say
    otherwise."""
    values = {
        "action": "http.request",
        "provider_key": "http",
        "operation": "request",
        "input": {},
        "attempt_limit": 5,
        "next_attempt_at": timezone.now(),
        **fields,
    }
    return Delivery.objects.bulk_create(
        (Delivery(customer=customer, **values) for _ in range(count)), batch_size=2000
    )
