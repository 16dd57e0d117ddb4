"""Credentials admin: a list of scopes and hints, read-only history, and the rotation page.

Creation and rotation have their own views (like Django's password change), because a secret
must go through ``credentials.services`` and must never be rendered back into a page."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from config.admin_tools import WideListMixin, confirmed_action, when
from credentials import services
from credentials.forms import CredentialCreateForm, CredentialRotateForm, ProviderChoiceForm
from credentials.models import Credential, CredentialAuditEntry, CredentialVersion

__all__ = ("CredentialAdmin", "CredentialAuditEntryAdmin")

sensitive_post_parameters_m = method_decorator(sensitive_post_parameters())
# Lookups on these would let a URL probe stored secret material (?versions__ciphertext__…).
REFUSED_LOOKUP_WORDS = ("ciphertext", "fingerprint", "secret", "field_")


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CredentialVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = CredentialVersion
    fields = readonly_fields = [
        "version",
        "state",
        "hint",
        "key_id",
        "created_by",
        "created_at",
        "grace_until",
        "revoked_at",
        "last_used_at",
    ]
    extra = 0
    verbose_name_plural = "Version history (secrets are never shown)"


class CredentialAuditInline(ReadOnlyMixin, admin.TabularInline):
    model = CredentialAuditEntry
    fields = readonly_fields = [
        "created_at",
        "actor",
        "action",
        "from_version",
        "to_version",
        "reason",
    ]
    extra = 0


@admin.register(Credential)
class CredentialAdmin(WideListMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "label",
        "current_hint",
        "rotated_at",
        "last_used",
        "in_grace",
        "allow_cross_region",
        "enabled",
    ]
    list_filter = ["provider", "purpose", "region", "tier", "enabled"]
    search_fields = ["provider", "label", "customer__slug"]
    list_select_related = ["customer", "region"]
    fields = [
        "provider",
        "purpose",
        "customer",
        "region",
        "tier",
        "label",
        "allow_cross_region",
        "enabled",
        "created_at",
        "rotated_at",
    ]
    readonly_fields = [
        "provider",
        "purpose",
        "customer",
        "region",
        "tier",
        "enabled",
        "created_at",
        "rotated_at",
    ]
    inlines = [CredentialVersionInline, CredentialAuditInline]
    actions = ["revoke_previous_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("versions")

    @admin.display(description="Current version")
    def current_hint(self, credential):
        current = [
            v for v in credential.versions.all() if v.state == CredentialVersion.State.CURRENT
        ]
        return f"v{current[0].version} {current[0].hint}" if current else "none"

    @admin.display(description="Last used")
    def last_used(self, credential):
        used = [v.last_used_at for v in credential.versions.all() if v.last_used_at]
        return max(used) if used else "-"

    @admin.display(description="Previous still in grace")
    def in_grace(self, credential):
        now = timezone.now()
        return (
            ", ".join(
                f"v{v.version} until {when(v.grace_until)}"
                for v in credential.versions.all()
                if v.state == CredentialVersion.State.PREVIOUS and v.grace_until > now
            )
            or "-"
        )

    @admin.action(
        description="Revoke previous versions now (end their grace period)",
        permissions=["rotate"],
    )
    def revoke_previous_selected(self, request, queryset):
        def revoke(credentials) -> int:
            revoked = 0
            for credential in credentials:
                count = services.credential_revoke(
                    credential=credential, created_by=request.user, reason="admin: revoke previous"
                )
                if count:
                    self.log_change(request, credential, f"Revoked {count} previous version(s).")
                revoked += count
            return revoked

        return confirmed_action(
            self,
            request,
            queryset,
            action="revoke_previous_selected",
            question="Revoke previous versions?",
            explanation="Revoke the previous versions of these credentials now? Their grace "
            "period ends at once: inbound signatures made with an old secret are refused from "
            "then on. Current versions stay.",
            describe=lambda c: f"{c} — {c.label}" if c.label else str(c),
            perform=revoke,
            done=("Revoked %d version.", "Revoked %d versions."),
        )

    def lookup_allowed(self, lookup, value, request=None):
        if any(word in lookup for word in REFUSED_LOOKUP_WORDS):
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_delete_permission(self, request, obj=None):
        # Revoke instead: the audit trail keeps referring to the credential.
        return False

    def has_rotate_permission(self, request, obj=None):
        codename = get_permission_codename("rotate", self.opts)  # rotate_credential
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def save_model(self, request, obj, form, change):
        services.credential_update(
            credential=obj,
            label=form.cleaned_data["label"],
            allow_cross_region=form.cleaned_data["allow_cross_region"],
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/rotate/",
                self.admin_site.admin_view(self.rotate_view),
                name="credentials_credential_rotate",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        credential = self.get_object(request, unquote(object_id))
        # A subscription's signing secret is rotated on the subscription's page only.
        can_rotate = self.has_rotate_permission(request) and not (credential and credential.owned)
        extra_context = {**(extra_context or {}), "can_rotate": can_rotate}
        return super().change_view(request, object_id, form_url, extra_context)

    def _render(self, request, template, context):
        return TemplateResponse(
            request,
            f"admin/credentials/credential/{template}",
            {**self.admin_site.each_context(request), "opts": self.opts, **context},
        )

    @sensitive_post_parameters_m
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        choice = ProviderChoiceForm(request.GET if "provider" in request.GET else None)
        if not choice.is_valid():
            return self._render(
                request, "create.html", {"title": "Add credential", "choice": choice}
            )
        provider, purpose = choice.cleaned_data["provider"], choice.cleaned_data["purpose"]
        form = CredentialCreateForm(
            request.POST if request.method == "POST" else None, provider=provider, purpose=purpose
        )
        if form.is_valid():
            try:
                credential = services.credential_create(
                    provider=provider,
                    purpose=purpose,
                    customer=form.cleaned_data["customer"],
                    region=form.cleaned_data["region"],
                    tier=form.cleaned_data["tier"],
                    label=form.cleaned_data["label"],
                    allow_cross_region=form.cleaned_data["allow_cross_region"],
                    fields=form.provider_fields(),
                    created_by=request.user,
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            except services.CredentialConflict as exc:
                form.add_error(None, str(exc))
            else:
                self.log_addition(request, credential, [{"added": {}}])
                self.message_user(request, f"Created {credential} (version 1).", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:credentials_credential_change", args=[credential.pk])
                )
        context = {
            "title": f"Add {provider} {purpose} credential",
            "choice": choice,
            "form": form,
            "provider": provider,
            "purpose": purpose,
        }
        return self._render(request, "create.html", context)

    @sensitive_post_parameters_m
    def rotate_view(self, request, object_id):
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        credential = self.get_object(request, unquote(object_id))
        if credential is None:
            raise Http404(f"No credential with id {object_id!r}.")
        if credential.owned:
            self.message_user(
                request,
                f"{credential} is a subscription's signing secret: rotate it from the "
                "subscription (Subscriptions → Rotate secret).",
                messages.ERROR,
            )
            return HttpResponseRedirect(
                reverse("admin:credentials_credential_change", args=[credential.pk])
            )
        form = CredentialRotateForm(
            request.POST if request.method == "POST" else None, credential=credential
        )
        if form.is_valid():
            try:
                version = services.credential_rotate(
                    credential=credential,
                    fields=form.provider_fields(),
                    grace_seconds=form.cleaned_data["grace_seconds"],
                    created_by=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            except services.CredentialConflict as exc:
                form.add_error(None, str(exc))
            else:
                message = (
                    f"Rotated to version {version.version} ({version.hint}); the previous "
                    f"version stays accepted for {form.cleaned_data['grace_seconds']} s."
                )
                self.log_change(request, credential, message)
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:credentials_credential_change", args=[credential.pk])
                )
        context = {
            "title": f"Rotate {credential}",
            "original": credential,
            "form": form,
            "versions": credential.versions.exclude(state=CredentialVersion.State.REVOKED),
        }
        return self._render(request, "rotate.html", context)


@admin.register(CredentialAuditEntry)
class CredentialAuditEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "actor", "credential", "action", "from_version", "to_version"]
    list_filter = ["action", "credential__provider"]
    search_fields = ["actor", "reason"]
    list_select_related = ["credential__customer", "credential__region"]
    readonly_fields = [
        "created_at",
        "actor",
        "credential",
        "action",
        "from_version",
        "to_version",
        "reason",
    ]
