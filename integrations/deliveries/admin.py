"""Delivery log and dead-letter screens. Lists say why (status, HTTP status, reason, error);
the delivery page opens with the attempt timeline and Retry / Cancel buttons. Retry and cancel
go through ``services.control`` behind a confirmation page and the ``retry_delivery``
permission, and are audited in the admin log with the operator's reason."""

import json

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.html import format_html
from django.utils.text import Truncator

from config.admin_filters import DateRangeFilter
from config.admin_lists import LargeTableMixin
from config.admin_tools import (
    ReadOnlyAdminMixin,
    WideListMixin,
    action_reason,
    audit,
    audit_trail,
    confirmed_action,
    field_names,
    object_action,
)
from config.api.problems import ProblemConflict
from integrations.deliveries import admin_search, services
from integrations.deliveries.admin_filters import HeldByBreakerFilter, ProviderFilter
from integrations.deliveries.admin_pages import attempt_rows, delivery_links
from integrations.deliveries.models import DeadLetter, Delivery, DeliveryAttempt

__all__ = ("DeadLetterAdmin", "DeliveryAdmin", "status_badge")

Status = Delivery.Status
ERROR_SHOWN = 140


def status_badge(value: str, label: str):
    return format_html('<span class="sy-badge sy-{}">{}</span>', value, label)


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _last_attempts():
    return DeliveryAttempt.objects.filter(delivery=OuterRef("pk")).order_by("-number")


class DeliveryControlMixin:
    """Retry and discard: bulk actions on the lists, buttons on the delivery page."""

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
            ask_reason=True,
        )

    def _audited(self, request, queryset, operation, message):
        """Run ``operation`` on the rows of ``queryset`` and audit the ones it could act on."""
        ids = list(queryset.values_list("pk", flat=True))
        count = operation(Delivery.objects.filter(pk__in=ids))
        audit(request, Delivery.objects.filter(pk__in=ids), message, action_reason(request))
        return count

    @admin.action(description="Retry selected dead letters", permissions=["retry"])
    def retry_selected(self, request, queryset):
        return self._confirm(
            request,
            queryset.filter(status=Status.DEAD),
            action="retry_selected",
            verb="Retry",
            explanation="They are sent again now, each with a fresh retry budget.",
            perform=lambda qs: self._audited(
                request,
                qs,
                lambda rows: services.dead_letters_retry(queryset=rows, enqueue=True),
                "Retried the dead letter.",
            ),
            done=("Retried %d delivery.", "Retried %d deliveries."),
        )

    @admin.action(description="Discard (cancel) selected", permissions=["retry"])
    def discard_selected(self, request, queryset):
        return self._confirm(
            request,
            queryset.filter(status__in=[Status.DEAD, Status.PENDING]),
            action="discard_selected",
            verb="Discard",
            explanation="They are cancelled and never sent; the log keeps them.",
            perform=lambda qs: self._audited(
                request, qs, lambda rows: services.deliveries_cancel(queryset=rows), "Cancelled."
            ),
            done=("Discarded %d delivery.", "Discarded %d deliveries."),
        )

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/retry/", view(self.retry_view), name=f"{name}_retry"),
            path("<int:pk>/cancel/", view(self.cancel_view), name=f"{name}_cancel"),
            *super().get_urls(),
        ]

    def retry_view(self, request, pk):
        return self._control_view(
            request,
            pk,
            services.delivery_retry,
            logged="Retried the dead letter.",
            done="Retrying delivery #{pk}.",
            title="Retry delivery #{pk}?",
            explanation="It is sent again now, with a fresh retry budget; the attempt is "
            "marked as a manual retry.",
        )

    def cancel_view(self, request, pk):
        return self._control_view(
            request,
            pk,
            services.delivery_cancel,
            logged="Cancelled.",
            done="Cancelled delivery #{pk}.",
            title="Cancel delivery #{pk}?",
            explanation="It is never sent (an attempt in flight finishes first); the log keeps it.",
        )

    def _control_view(self, request, pk, service, *, logged, done, title, explanation):
        """A delivery's Retry or Cancel button: confirmation, permission, audit with reason."""
        delivery = get_object_or_404(Delivery, pk=pk)

        def perform(reason):
            try:
                service(delivery=delivery)
            except ProblemConflict as exc:
                raise ValueError(exc.detail) from exc
            audit(request, [delivery], logged, reason)
            return done.format(pk=delivery.pk)

        return object_action(
            self,
            request,
            delivery,
            allowed=self.has_retry_permission(request),
            title=title.format(pk=delivery.pk),
            explanation=explanation,
            perform=perform,
        )


class DeliveryDisplayMixin:
    """The columns that say why."""

    @admin.display(description="Status", ordering="status")
    def status_badge(self, delivery):
        return status_badge(delivery.status, delivery.get_status_display())

    @admin.display(description="HTTP")
    def http_status(self, delivery):
        return getattr(delivery, "last_http_status", None) or "-"

    @admin.display(description="Reason", ordering="dead_reason")
    def reason(self, delivery):
        if delivery.dead_reason:
            return delivery.get_dead_reason_display()
        if delivery.last_error.startswith("Deferred"):
            return "Deferred (breaker)" if "circuit breaker" in delivery.last_error else "Deferred"
        return "-"

    @admin.display(description="Last error")
    def last_error_excerpt(self, delivery):
        """The provider's error of the last attempt: a later deferral must not hide it."""
        error = getattr(delivery, "last_attempt_error", "") or delivery.last_error
        return Truncator(error).chars(ERROR_SHOWN) or "-"


@admin.register(Delivery)
class DeliveryAdmin(
    LargeTableMixin,
    WideListMixin,
    ReadOnlyAdminMixin,
    DeliveryControlMixin,
    DeliveryDisplayMixin,
    admin.ModelAdmin,
):
    change_form_template = "admin/integrations/delivery/change_form.html"
    list_display = [
        "id",
        "status_badge",
        "action",
        "customer",
        "provider_key",
        "http_status",
        "reason",
        "last_error_excerpt",
        "attempts",
        "created_at",
    ]
    list_filter = [
        "status",
        ProviderFilter,
        "customer",
        "integration",
        "dead_reason",
        HeldByBreakerFilter,
        ("created_at", DateRangeFilter),
    ]
    # Shows the search box; the search itself is ``admin_search.deliveries_search``.
    search_fields = [
        "=id",
        "=key",
        "=idempotency_key",
        "customer__slug",
        "action",
        "last_error",
        "input",
    ]
    search_help_text = admin_search.HELP_TEXT
    list_select_related = ["customer"]
    # No date_hierarchy: its year links read every row's date (SELECT DISTINCT); the range
    # filter does the same job along the index.
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

    def get_queryset(self, request):
        last = _last_attempts()
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_http_status=Subquery(last.values("response_status")[:1]),
                last_attempt_error=Subquery(last.values("error")[:1]),
            )
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_search_results(self, request, queryset, search_term):
        return admin_search.deliveries_search(queryset, search_term), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        delivery = self.get_object(request, object_id)
        if delivery is not None:
            rows, older = attempt_rows(delivery)
            can_retry = self.has_retry_permission(request)
            extra_context = {
                **(extra_context or {}),
                "timeline": rows,
                "older_attempts": older,
                "links": delivery_links(delivery),
                "audit_entries": audit_trail(delivery),
                "can_retry": can_retry and delivery.status == Status.DEAD,
                "can_cancel": can_retry and delivery.status in (Status.DEAD, Status.PENDING),
                "delivery": delivery,
            }
        return super().change_view(request, object_id, form_url, extra_context)

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
        "http_status",
        "reason",
        "last_error_excerpt",
        "attempts",
        "finished_at",
    ]
    list_filter = [
        "dead_reason",
        ProviderFilter,
        "customer",
        "integration",
        ("finished_at", DateRangeFilter),
    ]
