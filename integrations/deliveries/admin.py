"""Delivery log and dead-letter screens. Read-only logs; retry and discard go through services,
behind a confirmation page and the ``retry_delivery`` permission."""

import json
import uuid

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.utils.html import format_html
from django.utils.text import Truncator

from config.admin_tools import ReadOnlyAdminMixin, confirmed_action, field_names
from integrations.deliveries import services
from integrations.deliveries.models import DeadLetter, Delivery, DeliveryAttempt

__all__ = ("DeadLetterAdmin", "DeliveryAdmin")


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


class AttemptInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    ordering = ["number"]
    fields = [
        ("number", "trigger", "outcome", "error_class"),
        ("started_at", "duration_ms", "credential_version", "next_delay_seconds"),
        "error",
        "request_line",
        "request_headers_pretty",
        "request_body",
        "response_line",
        "response_headers_pretty",
        "response_body",
    ]
    readonly_fields = field_names(fields)

    @admin.display(description="Request")
    def request_line(self, attempt):
        return f"{attempt.request_method} {attempt.request_url}" if attempt.request_method else "-"

    @admin.display(description="Request headers")
    def request_headers_pretty(self, attempt):
        return format_html("<pre>{}</pre>", _pretty(attempt.request_headers))

    @admin.display(description="Response")
    def response_line(self, attempt):
        return f"HTTP {attempt.response_status}" if attempt.response_status else "no response"

    @admin.display(description="Response headers")
    def response_headers_pretty(self, attempt):
        return format_html("<pre>{}</pre>", _pretty(attempt.response_headers))


class DeliveryControlMixin:
    """Retry and discard actions with a confirmation step (like delete_selected)."""

    def has_retry_permission(self, request):
        opts = Delivery._meta
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('retry', opts)}")

    def _confirm(self, request, queryset, *, action, verb, explanation, perform, done):
        count = queryset.count()
        return confirmed_action(
            self,
            request,
            queryset,
            action=action,
            question=f"{verb} this delivery?"
            if count == 1
            else f"{verb} these {count} deliveries?",
            explanation=explanation,
            describe=lambda d: (
                f"#{d.pk} {d.action} for {d.customer} ({d.get_status_display()})"
                + (f": {Truncator(d.last_error).chars(100)}" if d.last_error else "")
            ),
            perform=perform,
            done=done,
        )

    @admin.action(description="Retry selected dead letters", permissions=["retry"])
    def retry_selected(self, request, queryset):
        return self._confirm(
            request,
            queryset.filter(status=Delivery.Status.DEAD),
            action="retry_selected",
            verb="Retry",
            explanation="They are sent again now, each with a fresh retry budget.",
            perform=lambda qs: services.dead_letters_retry(queryset=qs, enqueue=True),
            done=("Retried %d delivery.", "Retried %d deliveries."),
        )

    @admin.action(description="Discard (cancel) selected", permissions=["retry"])
    def discard_selected(self, request, queryset):
        return self._confirm(
            request,
            queryset.filter(status__in=[Delivery.Status.DEAD, Delivery.Status.PENDING]),
            action="discard_selected",
            verb="Discard",
            explanation="They are cancelled and never sent; the log keeps them.",
            perform=lambda qs: services.deliveries_cancel(queryset=qs),
            done=("Discarded %d delivery.", "Discarded %d deliveries."),
        )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, DeliveryControlMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "action",
        "customer",
        "provider_key",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "provider_key", "dead_reason", "created_at"]
    search_fields = ["=id", "=key", "=idempotency_key", "customer__slug", "action"]
    list_select_related = ["customer"]
    date_hierarchy = "created_at"
    inlines = [AttemptInline]
    actions = ["retry_selected", "discard_selected"]
    fields = [
        ("id", "key", "status"),
        ("customer", "action", "provider_key", "operation"),
        ("attempts", "attempt_limit", "next_attempt_at", "lease_until"),
        ("idempotency_key", "api_key"),
        "input_pretty",
        "result_pretty",
        ("dead_reason", "last_error"),
        ("created_at", "updated_at", "finished_at"),
    ]
    readonly_fields = field_names(fields)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_search_fields(self, request):
        # Exact id and key lookups only make sense for text that can be one.
        term = request.GET.get("q", "").strip()
        fields = list(super().get_search_fields(request))
        if not term.isdigit():
            fields.remove("=id")
        try:
            uuid.UUID(term)
        except ValueError:
            fields.remove("=key")
        return fields

    @admin.display(description="Input")
    def input_pretty(self, delivery):
        return format_html("<pre>{}</pre>", _pretty(delivery.input))

    @admin.display(description="Result")
    def result_pretty(self, delivery):
        return format_html("<pre>{}</pre>", _pretty(delivery.result)) if delivery.result else "-"


@admin.register(DeadLetter)
class DeadLetterAdmin(DeliveryAdmin):
    list_display = [
        "id",
        "action",
        "customer",
        "provider_key",
        "dead_reason",
        "last_error_excerpt",
        "attempts",
        "finished_at",
    ]
    list_filter = ["dead_reason", "provider_key", "customer", "finished_at"]
    date_hierarchy = "finished_at"

    @admin.display(description="Last error")
    def last_error_excerpt(self, delivery):
        return Truncator(delivery.last_error).chars(120)
