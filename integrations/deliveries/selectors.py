"""Reads of deliveries, always through an API key's customer restriction."""

from django.db.models import Prefetch, QuerySet

from customers.models import ApiKey
from customers.selectors import customers_visible_to
from integrations.deliveries.models import Delivery, DeliveryAttempt

__all__ = ("dead_letter_list", "delivery_get", "delivery_list")


def delivery_list(*, api_key: ApiKey | None, filters: dict | None = None) -> QuerySet[Delivery]:
    """Filters: status, customer (slug), provider, action, created_after, created_before,
    dead_reason."""
    deliveries = Delivery.objects.select_related("customer").filter(
        customer__in=customers_visible_to(api_key)
    )
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    lookups = {
        "status": "status",
        "customer": "customer__slug",
        "provider": "provider_key",
        "action": "action",
        "dead_reason": "dead_reason",
        "created_after": "created_at__gte",
        "created_before": "created_at__lt",
    }
    return deliveries.filter(**{lookups[k]: v for k, v in filters.items() if k in lookups})


def delivery_get(*, api_key: ApiKey | None, delivery_id: int) -> Delivery | None:
    return (
        delivery_list(api_key=api_key)
        .prefetch_related(
            Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("number"))
        )
        .filter(pk=delivery_id)
        .first()
    )


def dead_letter_list(
    *, api_key: ApiKey | None, filters: dict | None = None, ids: list[int] | None = None
) -> QuerySet[Delivery]:
    """Dead deliveries the key may see, narrowed by ``filters`` (as ``delivery_list``, status
    aside) and, when given, to ``ids``."""
    dead = delivery_list(
        api_key=api_key, filters={**(filters or {}), "status": Delivery.Status.DEAD}
    )
    return dead if ids is None else dead.filter(pk__in=ids)
