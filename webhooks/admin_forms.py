"""Admin forms of the webhooks app: the provider as a choice, event types as lines of text with
examples, both checked before the service sees them."""

import json

from django import forms

from integrations.registry import providers
from webhooks import services
from webhooks.models import EndpointSource, Subscription, WebhookEndpoint
from webhooks.services.subscriptions import EVENT_TYPE_PATTERN

__all__ = ("SubscriptionForm", "WebhookEndpointForm", "event_types_parse")

EVENT_TYPES_HELP = (
    "One pattern per line (or separated by commas): <code>*</code> for every event, "
    "<code>trello.*</code> for a provider's events, or an exact type such as "
    "<code>stripe.invoice.paid</code>."
)


def _webhook_providers() -> list[tuple[str, str]]:
    # Miro sends no webhooks any more, but its board changes come in by polling (miro_poll).
    return sorted((p.key, p.name) for p in providers() if p.verifies_webhooks or p.key == "miro")


class WebhookEndpointForm(forms.ModelForm):
    provider = forms.ChoiceField(
        choices=(), help_text="Providers that sign their webhooks (verified on receipt)."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "customer",
            "provider",
            "source",
            "credential",
            "source_config",
            "source_credential",
            "active",
            "tolerance_seconds",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "---------"), *_webhook_providers()]
        if "source" in self.fields:
            # Absent from a form that predates sources: a webhook endpoint.
            self.fields["source"].required = False

    def clean(self):
        cleaned = super().clean()
        if "source" in self.fields:
            cleaned["source"] = cleaned.get("source") or EndpointSource.WEBHOOK
        cleaned["source_config"] = cleaned.get("source_config") or {}
        services.endpoint_tolerance_check(
            provider=cleaned.get("provider", ""),
            tolerance_seconds=cleaned.get("tolerance_seconds"),
        )
        source = cleaned.get("source") or self.instance.source
        if source == EndpointSource.WEBHOOK:
            if not cleaned.get("credential"):
                self.add_error("credential", "A webhook endpoint verifies with this credential.")
        elif cleaned.get("customer") and cleaned.get("provider"):
            # Validated (and its broker checked against the egress policy) as the API does.
            cleaned["source_config"] = services.endpoint_source_check(
                customer=cleaned["customer"],
                provider=cleaned["provider"],
                source=source,
                source_config=cleaned.get("source_config"),
                source_credential=cleaned.get("source_credential"),
            )
        return cleaned


def _candidates(text: str) -> list[str]:
    # A JSON list (as the API takes it) is accepted too.
    if text.lstrip().startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return [p.strip() for p in parsed if p.strip()]
    return [p.strip() for line in text.splitlines() for p in line.split(",") if p.strip()]


def event_types_parse(text: str) -> list[str]:
    """Patterns from lines, commas or a JSON list; each checked, all errors reported at once."""
    patterns = _candidates(text)
    if not patterns:
        raise forms.ValidationError("Give at least one pattern, for example *.")
    wrong = [p for p in patterns if not EVENT_TYPE_PATTERN.match(p)]
    if wrong:
        raise forms.ValidationError(
            "Not an event type pattern: %(wrong)s. Use letters, digits and _ between dots, "
            "optionally ending in .* (for example trello.* or stripe.invoice.paid).",
            params={"wrong": ", ".join(wrong)},
        )
    return list(dict.fromkeys(patterns))


class EventTypesField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def clean(self, value):
        return event_types_parse(super().clean(value) or "")


class SubscriptionForm(forms.ModelForm):
    event_types = EventTypesField(help_text=EVENT_TYPES_HELP, initial="*")

    class Meta:
        model = Subscription
        fields = ["url", "event_types", "customer", "allow_private", "active"]
