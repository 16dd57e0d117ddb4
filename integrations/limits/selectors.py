"""Reads of limiter state for the admin and the API."""

from django.db.models import QuerySet

from integrations.models import CircuitBreaker

__all__ = ("breaker_list",)


def breaker_list() -> QuerySet[CircuitBreaker]:
    """Every breaker that has seen a failure (a provider+region without a row is closed)."""
    return CircuitBreaker.objects.order_by("provider_key", "region")
