"""Reads of limiter state for the admin and the API."""

from django.db.models import QuerySet

from integrations.deliveries.models import Delivery
from integrations.models import CircuitBreaker

__all__ = ("breaker_held_deliveries", "breaker_list")


def breaker_list() -> QuerySet[CircuitBreaker]:
    """Every breaker that has seen a failure (a provider+region without a row is closed)."""
    return CircuitBreaker.objects.order_by("provider_key", "region")


def breaker_held_deliveries(*, breaker: CircuitBreaker) -> QuerySet[Delivery]:
    """Pending deliveries this breaker deferred: their last word is its deferral (written by
    the attempt service as "Deferred … circuit breaker of <provider>/<region> is open")."""
    scope = f"circuit breaker of {breaker.provider_key}/{breaker.region or '-'} "
    return Delivery.objects.filter(
        status=Delivery.Status.PENDING,
        provider_key=breaker.provider_key,
        last_error__startswith="Deferred",
        last_error__contains=scope,
    )
