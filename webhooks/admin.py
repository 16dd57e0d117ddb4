"""Inbound event log and dead letters (read-only; Replay behind a confirmation and the
``replay_inboundevent`` permission), endpoints and subscriptions with health pages (receive
URL, volume, success rate, recent failures; pause / resume; send test event), and
subscriptions whose secret is shown once, on the page that created or rotated it, and never
again. Operator actions are audited in the admin log (config/admin_tools.audit)."""

import json
from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from config.admin_filters import DateRangeFilter
from config.admin_lists import LargeTableMixin
from config.admin_tools import (
    ReadOnlyAdminMixin,
    WideListMixin,
    audit,
    audit_trail,
    change_url,
    confirmed_action,
    field_names,
    object_action,
)
from integrations.deliveries.admin import status_badge
from integrations.deliveries.admin_filters import provider_filter
from webhooks import admin_forms, admin_health, admin_search, selectors, services
from webhooks.admin_subscriptions import SubscriptionAdmin
from webhooks.models import DeadInboundEvent, EndpointSource, InboundEvent, WebhookEndpoint
from webhooks.services.endpoints import endpoint_active_set

__all__ = (
    "DeadInboundEventAdmin",
    "InboundEventAdmin",
    "SubscriptionAdmin",
    "WebhookEndpointAdmin",
)

LAST_RECEIVED_WINDOW = timedelta(hours=24)


def _endpoint_label(endpoint: WebhookEndpoint) -> str:
    return f"{endpoint.provider} · {endpoint.customer.slug}"


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(WideListMixin, admin.ModelAdmin):
    form = admin_forms.WebhookEndpointForm
    change_form_template = "admin/webhooks/webhookendpoint/change_form.html"
    list_filter = ["provider", "active", "customer"]
    search_fields = ["=public_id", "customer__slug", "provider"]
    list_select_related = ["customer"]
    fields = [
        "customer",
        "provider",
        "source",
        "credential",
        "source_config",
        "source_credential",
        "active",
        "tolerance_seconds",
        "rejected_signatures",
        "last_rejected_at",
        "source_seen_at",
        "source_error",
        "source_state",
    ]
    readonly_fields = [
        "rejected_signatures",
        "last_rejected_at",
        "source_seen_at",
        "source_error",
        "source_state",
    ]
    raw_id_fields = ["credential", "source_credential"]

    def get_readonly_fields(self, request, obj=None):
        # How events arrive is chosen once: a webhook endpoint's URL was given to a provider.
        readonly = super().get_readonly_fields(request, obj)
        return [*readonly, "source"] if obj is not None else readonly

    def get_queryset(self, request):
        # Bounded to a recent window: a quiet endpoint must not cost a scan of every event.
        recent = InboundEvent.objects.filter(
            endpoint=OuterRef("pk"), received_at__gte=timezone.now() - LAST_RECEIVED_WINDOW
        ).order_by("-received_at")
        return (
            super()
            .get_queryset(request)
            .annotate(last_received=Subquery(recent.values("received_at")[:1]))
        )

    def get_list_display(self, request):
        @admin.display(description="Receive URL")
        def receive_url(endpoint):
            if endpoint.source != EndpointSource.WEBHOOK:
                return endpoint.get_source_display()
            return format_html(
                "<code>{}</code>",
                selectors.endpoint_receive_url(endpoint=endpoint, request=request),
            )

        return [
            "public_id",
            "customer",
            "provider",
            "state",
            receive_url,
            "last_received_at",
            "rejected_signatures",
            "last_rejected_at",
        ]

    @admin.display(description="State", ordering="active")
    def state(self, endpoint):
        return status_badge(
            "ok" if endpoint.active else "paused", "Active" if endpoint.active else "Paused"
        )

    @admin.display(description="Last received (24 h)", ordering="last_received")
    def last_received_at(self, endpoint):
        return endpoint.last_received or "-"

    def has_pause_permission(self, request):
        return request.user.has_perm("webhooks.change_webhookendpoint")

    def get_urls(self):
        view, name = self.admin_site.admin_view, "webhooks_webhookendpoint"
        return [
            path("<int:pk>/pause/", view(self.pause_view), name=f"{name}_pause"),
            path("<int:pk>/resume/", view(self.resume_view), name=f"{name}_resume"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        endpoint = self.get_object(request, object_id)
        if endpoint is not None:
            extra_context = {
                **(extra_context or {}),
                "health": admin_health.endpoint_health(endpoint),
                "receive_url": selectors.endpoint_receive_url(endpoint=endpoint, request=request),
                "audit_entries": audit_trail(endpoint),
                "can_pause": self.has_pause_permission(request),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _set_active(self, request, pk, active: bool):
        endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
        verb = "Resume" if active else "Pause"

        def perform(reason):
            changed = endpoint_active_set(endpoint=endpoint, active=active)
            audit(request, [endpoint], f"{verb}d the endpoint.", reason)
            return f"{verb}d {_endpoint_label(endpoint)}." if changed else "Nothing to change."

        return object_action(
            self,
            request,
            endpoint,
            allowed=self.has_pause_permission(request),
            title=f"{verb} the endpoint {_endpoint_label(endpoint)}?",
            explanation="A paused endpoint answers 404, so the provider keeps its webhooks and "
            "retries later (within a few seconds of the change)."
            if not active
            else "The receive URL accepts the provider's webhooks again.",
            perform=perform,
        )

    def pause_view(self, request, pk):
        return self._set_active(request, pk, active=False)

    def resume_view(self, request, pk):
        return self._set_active(request, pk, active=True)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        try:
            if obj.source != EndpointSource.WEBHOOK:
                created = services.endpoint_source_create(
                    customer=obj.customer,
                    provider=obj.provider,
                    source=obj.source,
                    source_config=obj.source_config,
                    source_credential=obj.source_credential,
                    active=obj.active,
                )
                obj.pk, obj.public_id = created.pk, created.public_id
                return
            created = services.endpoint_create(
                customer=obj.customer,
                provider=obj.provider,
                credential=obj.credential,
                active=obj.active,
                tolerance_seconds=obj.tolerance_seconds,
            )
        except ValidationError as exc:
            raise PermissionDenied(exc.messages) from exc
        obj.pk, obj.public_id = created.pk, created.public_id


class InboundEventAdmin(LargeTableMixin, WideListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/webhooks/inboundevent/change_form.html"
    list_display = [
        "id",
        "received_at",
        "provider",
        "endpoint_label",
        "type",
        "status_badge",
        "signature_version",
        "attempts",
        "error_excerpt",
    ]
    # Choices from the registry and the small endpoint table; no SELECT DISTINCT over events
    # (signature versions are still searchable by the event's page).
    list_filter = [
        "status",
        provider_filter("provider"),
        "endpoint__customer",
        ("received_at", DateRangeFilter),
    ]
    # Shows the search box; the search itself is ``admin_search.inbound_events_search``.
    search_fields = ["=external_id", "type", "error"]
    search_help_text = admin_search.HELP_TEXT
    list_select_related = ["endpoint__customer"]
    fields = [
        ("provider", "endpoint", "status"),
        ("external_id", "type", "signature_version"),
        ("received_at", "processed_at", "remote_ip"),
        ("attempts", "attempt_limit", "next_attempt_at"),
        "error",
        "headers_pretty",
        "raw_payload",
        "envelope_pretty",
    ]
    readonly_fields = field_names(fields)
    actions = ["replay"]

    def get_search_results(self, request, queryset, search_term):
        return admin_search.inbound_events_search(queryset, search_term), False

    @admin.display(description="Endpoint", ordering="endpoint")
    def endpoint_label(self, event):
        return _endpoint_label(event.endpoint)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, event):
        return status_badge(event.status, event.get_status_display())

    @admin.display(description="Error")
    def error_excerpt(self, event):
        return Truncator(event.error).chars(120) or "-"

    @admin.display(description="Headers")
    def headers_pretty(self, event):
        return format_html("<pre>{}</pre>", json.dumps(event.headers, indent=2, sort_keys=True))

    @admin.display(description="Raw payload")
    def raw_payload(self, event):
        return format_html("<pre>{}</pre>", bytes(event.body).decode("utf-8", errors="replace"))

    @admin.display(description="Normalised event")
    def envelope_pretty(self, event):
        return format_html("<pre>{}</pre>", json.dumps(event.envelope, indent=2))

    def has_replay_permission(self, request):
        return request.user.has_perm("webhooks.replay_inboundevent")

    def get_urls(self):
        opts = self.model._meta
        replay = self.admin_site.admin_view(self.replay_view)
        name = f"{opts.app_label}_{opts.model_name}_replay"
        return [path("<int:pk>/replay/", replay, name=name), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        event = self.get_object(request, object_id)
        if event is not None:
            extra_context = {
                **(extra_context or {}),
                "fan_out": admin_health.event_deliveries(event),
                "endpoint_url": change_url(event.endpoint),
                "audit_entries": audit_trail(event),
                "can_replay": self.has_replay_permission(request),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def replay_view(self, request, pk):
        event = get_object_or_404(InboundEvent, pk=pk)

        def perform(reason):
            count = services.inbound_events_replay(queryset=InboundEvent.objects.filter(pk=pk))
            audit(request, [event], "Replayed the event.", reason)
            return f"Replaying event #{pk}." if count else "Nothing to replay."

        return object_action(
            self,
            request,
            event,
            allowed=self.has_replay_permission(request),
            title=f"Replay event #{event.pk}?",
            explanation="It is normalised again and fanned out to the subscriptions that match "
            "it now, with a fresh retry budget.",
            perform=perform,
        )

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay(self, request, queryset):
        count = queryset.count()

        def perform(events):
            events = list(events)
            replayed = services.inbound_events_replay(
                queryset=InboundEvent.objects.filter(pk__in=[e.pk for e in events])
            )
            audit(request, events, "Replayed the event.", request.POST.get("reason", "").strip())
            return replayed

        return confirmed_action(
            self,
            request,
            queryset,
            action="replay",
            question="Replay this event?" if count == 1 else f"Replay these {count} events?",
            explanation="Each is normalised again and fanned out to the subscriptions that "
            "match it now, with a fresh retry budget.",
            describe=lambda e: (
                f"#{e.pk} {e.provider} {e.type or e.external_id} "
                f"({e.get_status_display()})"
                + (f": {Truncator(e.error).chars(100)}" if e.error else "")
            ),
            perform=perform,
            done=("Replaying %d event.", "Replaying %d events."),
            ask_reason=True,
        )


admin.site.register(InboundEvent, InboundEventAdmin)


@admin.register(DeadInboundEvent)
class DeadInboundEventAdmin(InboundEventAdmin):
    list_display = [
        "id",
        "received_at",
        "provider",
        "endpoint_label",
        "type",
        "attempts",
        "error_excerpt",
    ]
    list_filter = [
        provider_filter("provider"),
        "endpoint__customer",
        ("received_at", DateRangeFilter),
    ]
