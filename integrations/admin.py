import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from config.admin_tools import ReadOnlyAdminMixin
from credentials.services import CredentialNotConfigured
from integrations import services

# The delivery engine keeps its admin screens in their own module; importing it here is what
# registers them when Django autodiscovers integrations.admin.
from integrations.deliveries import admin as deliveries_admin  # noqa: F401
from integrations.limits import admin as limits_admin  # noqa: F401
from integrations.models import Integration, ProcessHeartbeat
from integrations.ops import admin as ops_admin  # noqa: F401
from integrations.registry import get_provider, provider_keys

# Each check is a live call to the provider made while the admin request waits.
MAX_CHECKS_PER_ACTION = 20


CONFIG_EXAMPLE = {"retry": {"max_attempts": 5}, "rate_limit": {"rate": 10, "per_seconds": 1}}


def _config_help():
    """The settings each provider's config accepts (its serializer's fields), with an example;
    a wrong value is refused by the model's validation with the field named."""
    rows = (
        (key, ", ".join(get_provider(key).config_serializer().fields) or "(none)")
        for key in provider_keys()
    )
    return format_html(
        "A JSON object, checked against the provider's settings. Example: <code>{}</code>"
        "<br>Settings per provider: {}",
        json.dumps(CONFIG_EXAMPLE),
        format_html_join("; ", "<b>{}</b>: {}", rows),
    )


class IntegrationForm(forms.ModelForm):
    provider_key = forms.ChoiceField(label="Provider", choices=())
    config = forms.JSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "class": "vLargeTextField"}),
    )

    class Meta:
        model = Integration
        fields = ["customer", "provider_key", "config", "active", "trusted"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider_key"].choices = [(key, key) for key in provider_keys()]
        self.fields["config"].help_text = _config_help()

    def clean_config(self):
        config = self.cleaned_data.get("config")
        if config in (None, ""):
            return {}
        if not isinstance(config, dict):
            raise forms.ValidationError(
                'Expected a JSON object such as {"retry": {"max_attempts": 5}}.'
            )
        return config


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationForm
    list_display = [
        "id",
        "customer",
        "provider_key",
        "active",
        "trusted",
        "base_url",
        "updated_at",
    ]
    list_filter = ["provider_key", "active", "trusted", "customer__region", "customer"]
    search_fields = ["customer__slug", "customer__name", "provider_key"]
    list_select_related = ["customer", "customer__region"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["check_connection"]

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Through the service, so that a new base_url, customer or provider drops the trust
        # unless the admin ticks it again in the same change.
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        services.integration_update(integration=obj, **changes)

    @admin.display(description="Base URL")
    def base_url(self, integration):
        return integration.config.get("base_url", "(provider default)")

    @admin.action(permissions=["change"], description="Check connection")
    def check_connection(self, request, queryset):
        selected = list(queryset[: MAX_CHECKS_PER_ACTION + 1])
        if len(selected) > MAX_CHECKS_PER_ACTION:
            self.message_user(
                request,
                f"Select at most {MAX_CHECKS_PER_ACTION} integrations to check at once.",
                messages.ERROR,
            )
            return
        for integration in selected:
            try:
                outcome = services.integration_check(integration=integration)
            except CredentialNotConfigured as exc:
                self.message_user(request, f"{integration}: {exc}", messages.ERROR)
                continue
            if outcome.ok:
                text = f"{integration}: connection works ({outcome.duration_ms} ms)."
            else:
                status = outcome.status or "-"
                text = f"{integration}: {outcome.outcome} (HTTP {status}) {outcome.error}"
            self.message_user(request, text, messages.SUCCESS if outcome.ok else messages.ERROR)


@admin.register(ProcessHeartbeat)
class ProcessHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The processes' last signs of life (the dashboard's heartbeat figures link here)."""

    list_display = ["role", "host", "pid", "started_at", "seen_at"]
    list_filter = ["role"]
    ordering = ["role", "-seen_at"]
