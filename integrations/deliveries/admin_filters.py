"""List filters of the log screens that read no table to offer their choices: Django's
default filter on a plain text column lists its values with ``SELECT DISTINCT``, a scan of
millions of rows per page; these take them from the provider registry or the breakers."""

from django.contrib import admin
from django.db.models import QuerySet

from integrations.limits.selectors import breaker_held_deliveries
from integrations.models import CircuitBreaker
from integrations.registry import provider_keys

__all__ = ("HeldByBreakerFilter", "ProviderFilter", "provider_filter")


class ProviderFilter(admin.SimpleListFilter):
    """By provider key, choices from the registry; the column is named by ``field_name``."""

    title = "provider"
    parameter_name = "provider_key"
    field_name = "provider_key"

    def lookups(self, request, model_admin):
        return [(key, key) for key in sorted(provider_keys())]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(**{self.field_name: value}) if value else queryset


def provider_filter(field_name: str) -> type[ProviderFilter]:
    """A ``ProviderFilter`` on another column (inbound events name it ``provider``)."""
    return type(
        f"ProviderFilter_{field_name}",
        (ProviderFilter,),
        {"parameter_name": field_name, "field_name": field_name},
    )


class HeldByBreakerFilter(admin.SimpleListFilter):
    """Pending deliveries an open breaker deferred (the dashboard's "held" figure links here)."""

    title = "held by breaker"
    parameter_name = "held_by"

    def lookups(self, request, model_admin):
        breakers = CircuitBreaker.objects.exclude(state=CircuitBreaker.State.CLOSED)
        return [(str(b.pk), f"{b.provider_key}/{b.region or '-'}") for b in breakers]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        breaker = CircuitBreaker.objects.filter(pk=self.value()).first()
        if breaker is None:
            return queryset.none()
        return queryset.filter(pk__in=breaker_held_deliveries(breaker=breaker).values("pk"))
