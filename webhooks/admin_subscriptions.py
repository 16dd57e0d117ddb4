"""The subscription screens: health (deliveries in the last day, success rate, recent
failures), Send test event, Pause / Resume, and the signing secret shown once, on the page that
created or rotated it, and never again."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_variables

from config.admin_tools import audit, audit_trail, object_action, when
from credentials.exceptions import CredentialConflict
from integrations.deliveries.admin import status_badge
from webhooks import admin_forms, admin_health, services
from webhooks.models import Subscription
from webhooks.services.sample_event import subscription_test_event_send
from webhooks.services.subscriptions import subscription_resume

__all__ = ("SubscriptionAdmin",)


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = admin_forms.SubscriptionForm
    change_form_template = "admin/webhooks/subscription/change_form.html"
    list_display = ["id", "url", "event_types_text", "customer", "state", "disabled_reason"]
    list_filter = ["active", "customer"]
    search_fields = ["url", "customer__slug"]
    list_select_related = ["customer"]
    fields = ["url", "event_types", "customer", "allow_private", "active", "secret_versions"]
    readonly_fields = ["secret_versions"]

    @admin.display(description="Event types")
    def event_types_text(self, subscription):
        return ", ".join(subscription.event_types)

    @admin.display(description="State", ordering="active")
    def state(self, subscription):
        active = subscription.active
        return status_badge("ok" if active else "paused", "Active" if active else "Paused")

    @admin.display(description="Signing secrets")
    def secret_versions(self, subscription):
        if subscription.pk is None:
            return "Generated on save and shown once."
        credential = subscription.signing_credential
        versions = credential.versions.order_by("-version") if credential else []
        rows = [
            f"v{v.version} {v.hint} "
            + (
                f"{v.state} until {when(v.grace_until)}"
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
        view, name = self.admin_site.admin_view, "webhooks_subscription"
        return [
            path("<int:pk>/rotate/", view(self.rotate_view), name=f"{name}_rotate"),
            path("<int:pk>/test/", view(self.test_view), name=f"{name}_test"),
            path("<int:pk>/pause/", view(self.pause_view), name=f"{name}_pause"),
            path("<int:pk>/resume/", view(self.resume_view), name=f"{name}_resume"),
            *super().get_urls(),
        ]

    def has_rotate_permission(self, request):
        return request.user.has_perm("webhooks.rotate_subscription_secret")

    def has_control_permission(self, request):
        return request.user.has_perm("webhooks.change_subscription")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = self.get_object(request, object_id)
        if subscription is not None:
            extra_context = {
                **(extra_context or {}),
                "health": admin_health.subscription_health(subscription),
                "audit_entries": audit_trail(subscription),
                "can_control": self.has_control_permission(request),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def test_view(self, request, pk):
        subscription = get_object_or_404(Subscription, pk=pk)

        def perform(reason):
            result = subscription_test_event_send(subscription=subscription)
            audit(request, [subscription], f"Sent a test event: {result}.", reason)
            if not result.ok:
                raise ValueError(str(result))
            return str(result)

        return object_action(
            self,
            request,
            subscription,
            allowed=self.has_control_permission(request),
            title=f"Send a test event to {subscription.url}?",
            explanation="One signed switchyard.test event is POSTed now with the current "
            "signing secrets; the answer is shown here. It is not stored or retried.",
            perform=perform,
            button="Send test event",
        )

    def pause_view(self, request, pk):
        subscription = get_object_or_404(Subscription, pk=pk)

        def perform(reason):
            why = f"Paused by {request.user.get_username()}" + (f": {reason}" if reason else ".")
            services.subscription_disable(subscription_id=subscription.pk, reason=why[:200])
            audit(request, [subscription], "Paused the subscription.", reason)
            return f"Paused {subscription}."

        return object_action(
            self,
            request,
            subscription,
            allowed=self.has_control_permission(request),
            title=f"Pause {subscription}?",
            explanation="Events that arrive while it is paused are not sent to it.",
            perform=perform,
        )

    def resume_view(self, request, pk):
        subscription = get_object_or_404(Subscription, pk=pk)

        def perform(reason):
            changed = subscription_resume(subscription=subscription)
            audit(request, [subscription], "Resumed the subscription.", reason)
            return f"Resumed {subscription}." if changed else "It was already active."

        return object_action(
            self,
            request,
            subscription,
            allowed=self.has_control_permission(request),
            title=f"Resume {subscription}?",
            explanation="New events are sent to it again; those of the pause are not.",
            perform=perform,
        )

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
                "title": f"Rotate the signing secret of subscription #{subscription.pk}",
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
                "title": f"Signing secret {verb}",
                "opts": Subscription._meta,
                "subscription": subscription,
                "secret": secret,
                "verb": verb,
            },
        )
        response["Cache-Control"] = "no-store"
        return response
