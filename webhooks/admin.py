"""Inbound event log and dead letters (read-only, bulk Replay behind a confirmation and the
``replay_inboundevent`` permission), endpoints with their receive URL, and subscriptions whose
secret is shown once, on the page that created or rotated it, and never again."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.debug import sensitive_variables

from config.admin_tools import ReadOnlyAdminMixin, confirmed_action, field_names
from credentials.exceptions import CredentialConflict
from webhooks import selectors, services
from webhooks.models import DeadInboundEvent, InboundEvent, Subscription, WebhookEndpoint

__all__ = (
    "DeadInboundEventAdmin",
    "InboundEventAdmin",
    "SubscriptionAdmin",
    "WebhookEndpointAdmin",
)


class WebhookEndpointForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        services.endpoint_tolerance_check(
            provider=cleaned.get("provider", ""),
            tolerance_seconds=cleaned.get("tolerance_seconds"),
        )
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["public_id", "customer", "provider", "active", "rejected_signatures"]
    list_filter = ["provider", "active"]
    fields = [
        "customer",
        "provider",
        "credential",
        "active",
        "tolerance_seconds",
        "receive_url",
        "rejected_signatures",
        "last_rejected_at",
    ]
    readonly_fields = ["receive_url", "rejected_signatures", "last_rejected_at"]
    raw_id_fields = ["credential"]

    @admin.display(description="Receive URL")
    def receive_url(self, endpoint):
        if endpoint.pk is None:
            return "Shown once saved."
        return format_html("<code>{}</code>", selectors.endpoint_receive_url(endpoint=endpoint))

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        try:
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


class InboundEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "received_at",
        "provider",
        "endpoint",
        "type",
        "status",
        "signature_version",
        "attempts",
    ]
    list_filter = ["status", "provider", "signature_version"]
    search_fields = ["external_id", "type"]
    date_hierarchy = "received_at"
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
        opts = InboundEvent._meta
        codename = get_permission_codename("replay", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay(self, request, queryset):
        count = queryset.count()
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
            perform=lambda events: services.inbound_events_replay(queryset=events),
            done=("Replaying %d event.", "Replaying %d events."),
        )


admin.site.register(InboundEvent, InboundEventAdmin)


@admin.register(DeadInboundEvent)
class DeadInboundEventAdmin(InboundEventAdmin):
    list_display = ["id", "received_at", "provider", "endpoint", "type", "attempts", "error"]
    list_filter = ["provider"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "url", "event_types", "customer", "active", "disabled_reason"]
    list_filter = ["active"]
    fields = ["url", "event_types", "customer", "allow_private", "active", "secret_versions"]
    readonly_fields = ["secret_versions"]

    @admin.display(description="Signing secrets")
    def secret_versions(self, subscription):
        if subscription.pk is None:
            return "Generated on save and shown once."
        credential = subscription.signing_credential
        versions = credential.versions.order_by("-version") if credential else []
        rows = [
            f"v{v.version} {v.hint} "
            + (
                f"{v.state} until {v.grace_until:%Y-%m-%d %H:%M}"
                if v.state == v.State.PREVIOUS and v.grace_until
                else v.state
            )
            for v in versions
        ] or ["none"]
        url = reverse("admin:webhooks_subscription_rotate", args=[subscription.pk])
        return format_html(
            "{}<br><a class='button' href='{}'>Rotate secret</a>", "; ".join(rows), url
        )

    def get_urls(self):
        rotate = self.admin_site.admin_view(self.rotate_view)
        return [
            path("<int:pk>/rotate/", rotate, name="webhooks_subscription_rotate"),
            *super().get_urls(),
        ]

    def has_rotate_permission(self, request):
        opts = Subscription._meta
        return request.user.has_perm(f"{opts.app_label}.rotate_subscription_secret")

    @sensitive_variables("secret")
    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, extra_context)

    @sensitive_variables("secret")
    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            services.subscription_owner_sync(subscription=obj)
            return
        try:
            created, secret = services.subscription_create(
                url=obj.url,
                event_types=obj.event_types,
                allow_private=obj.allow_private,
                customer=obj.customer,
                created_by=request.user,
            )
        except ValidationError as exc:
            raise PermissionDenied(exc.messages) from exc
        obj.pk = created.pk
        request._subscription_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        # The secret is rendered into this one response, never stored in messages or sessions.
        return self._show_secret(request, obj, request._subscription_secret, "created")

    @sensitive_variables("secret")
    def rotate_view(self, request, pk):
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        subscription = get_object_or_404(Subscription, pk=pk)
        if request.method == "POST":
            try:
                grace = int(request.POST.get("grace_seconds", services.DEFAULT_GRACE_SECONDS))
                secret = services.subscription_rotate_secret(
                    subscription=subscription, grace_seconds=grace, created_by=request.user
                )
            except (ValueError, ValidationError):
                self.message_user(
                    request, "Give a grace period in seconds (0 to 7 days).", messages.ERROR
                )
            except CredentialConflict as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.log_change(request, subscription, "Rotated the signing secret.")
                return self._show_secret(request, subscription, secret, "rotated")
        return TemplateResponse(
            request,
            "admin/webhooks/rotate_secret.html",
            {
                **self.admin_site.each_context(request),
                "opts": Subscription._meta,
                "subscription": subscription,
                "default_grace": services.DEFAULT_GRACE_SECONDS,
            },
        )

    def _show_secret(self, request, subscription, secret, verb):
        response = TemplateResponse(
            request,
            "admin/webhooks/show_secret.html",
            {
                **self.admin_site.each_context(request),
                "opts": Subscription._meta,
                "subscription": subscription,
                "secret": secret,
                "verb": verb,
            },
        )
        response["Cache-Control"] = "no-store"
        return response
