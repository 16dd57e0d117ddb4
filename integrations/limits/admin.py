"""Circuit breakers in the admin: traffic changes their state, so the fields are read-only; the
page shows how long the provider has been failing and what is held, and offers Close and
Probe now (the ``change_circuitbreaker`` permission), each audited with the operator's reason."""

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from config.admin_tools import (
    ReadOnlyAdminMixin,
    WideListMixin,
    audit,
    audit_trail,
    change_url,
    object_action,
)
from integrations.deliveries.admin import status_badge
from integrations.limits import control
from integrations.limits.selectors import breaker_held_deliveries
from integrations.models import CircuitBreaker, Delivery

__all__ = ("CircuitBreakerAdmin",)

HELD_SHOWN = 50
ERROR_SHOWN = 160


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(WideListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/integrations/circuitbreaker/change_form.html"
    list_display = [
        "provider_key",
        "region",
        "state_badge",
        "probe_due",
        "failure_count",
        "first_opened_at",
        "opened_at",
        "open_until",
        "last_error_excerpt",
        "updated_at",
    ]
    list_filter = ["state", "provider_key"]
    fields = [
        ("provider_key", "region", "state"),
        ("first_opened_at", "opened_at", "open_until", "probe_until"),
        "failing_links",
        "last_error",
        "updated_at",
    ]
    readonly_fields = [
        "provider_key",
        "region",
        "state",
        "first_opened_at",
        "opened_at",
        "open_until",
        "probe_until",
        "failing_links",
        "last_error",
        "updated_at",
    ]
    actions = None

    def has_control_permission(self, request):
        opts = CircuitBreaker._meta
        codename = get_permission_codename("change", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")

    @admin.display(description="State", ordering="state")
    def state_badge(self, breaker):
        return status_badge(breaker.state, breaker.get_state_display())

    @admin.display(boolean=True, description="Probe due")
    def probe_due(self, breaker):
        return breaker.probe_due

    @admin.display(description="Failing deliveries")
    def failure_count(self, breaker):
        return len(breaker.failing_deliveries)

    @admin.display(description="Last error")
    def last_error_excerpt(self, breaker):
        return Truncator(breaker.last_error).chars(ERROR_SHOWN) or "-"

    @admin.display(description="Failing deliveries")
    def failing_links(self, breaker):
        ids = [i for i in breaker.failing_deliveries if isinstance(i, int)]
        if not ids:
            return "-"
        return format_html_join(
            ", ", '<a href="{}">#{}</a>', ((change_url(Delivery(pk=i)), i) for i in ids)
        )

    def get_urls(self):
        view, name = self.admin_site.admin_view, "integrations_circuitbreaker"
        return [
            path("<int:pk>/close/", view(self.close_view), name=f"{name}_close"),
            path("<int:pk>/probe/", view(self.probe_view), name=f"{name}_probe"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        breaker = self.get_object(request, object_id)
        if breaker is not None:
            held = breaker_held_deliveries(breaker=breaker).select_related("customer")
            extra_context = {
                **(extra_context or {}),
                "held": held.order_by("next_attempt_at", "pk")[:HELD_SHOWN],
                "held_count": held.count(),
                "audit_entries": audit_trail(breaker),
                "can_control": self.has_control_permission(request),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def close_view(self, request, pk):
        breaker = get_object_or_404(CircuitBreaker, pk=pk)

        def perform(reason):
            was_open = control.breaker_close(breaker=breaker)
            audit(request, [breaker], "Closed the breaker.", reason)
            return f"Closed {breaker}." if was_open else f"{breaker} was already closed."

        return object_action(
            self,
            request,
            breaker,
            allowed=self.has_control_permission(request),
            title=f"Close the breaker of {breaker.provider_key}/{breaker.region or '-'}?",
            explanation="Sends to this provider go through again and its failures are "
            "forgotten; held deliveries go at their deferred time. Close it once the provider "
            "is known to work again.",
            perform=perform,
        )

    def probe_view(self, request, pk):
        breaker = get_object_or_404(CircuitBreaker, pk=pk)

        def perform(reason):
            probe = control.breaker_probe_now(breaker=breaker)
            audit(request, [breaker], "Asked for a probe now.", reason)
            if probe is None:
                return "The cool-off is over: the next send is the probe."
            return format_html(
                'Delivery <a href="{}">#{}</a> is due now and becomes the probe.',
                change_url(probe),
                probe.pk,
            )

        return object_action(
            self,
            request,
            breaker,
            allowed=self.has_control_permission(request),
            title=f"Probe {breaker.provider_key}/{breaker.region or '-'} now?",
            explanation="The cool-off ends now: one held delivery is sent as the probe. A "
            "success closes the breaker; a failure opens it for another cool-off.",
            perform=perform,
        )
