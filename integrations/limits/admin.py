"""Circuit breakers in the admin: a read-only list, since state changes come from traffic."""

from django.contrib import admin

from config.admin_tools import ReadOnlyAdminMixin
from integrations.models import CircuitBreaker

__all__ = ("CircuitBreakerAdmin",)


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "provider_key",
        "region",
        "state",
        "probe_due",
        "failure_count",
        "opened_at",
        "open_until",
        "last_error",
        "updated_at",
    ]
    list_filter = ["state", "provider_key"]
    fields = [
        "provider_key",
        "region",
        "state",
        "failing_deliveries",
        "opened_at",
        "open_until",
        "probe_until",
        "last_error",
        "updated_at",
    ]
    readonly_fields = fields
    actions = None

    @admin.display(boolean=True, description="Probe due")
    def probe_due(self, breaker):
        return breaker.probe_due

    @admin.display(description="Failing deliveries")
    def failure_count(self, breaker):
        return len(breaker.failing_deliveries)
