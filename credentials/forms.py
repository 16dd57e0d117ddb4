"""Admin forms. Secret inputs are password inputs that never render a value back, so a page
re-shown after an error carries no secret."""

from django import forms
from django.core.exceptions import ValidationError

from credentials.models import OWNED_PURPOSES, Credential
from credentials.services import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS
from customers.models import Customer, Region, Tier
from integrations.registry import get_provider, providers

__all__ = ("CredentialCreateForm", "CredentialRotateForm", "ProviderChoiceForm")

FIELD_PREFIX = "field_"


class ProviderFieldsMixin:
    """Adds one input per credential field the provider declares for the purpose."""

    def _add_provider_fields(self, provider_key: str, purpose: str) -> None:
        for declared in get_provider(provider_key).credential_fields.get(purpose, []):
            self.fields[FIELD_PREFIX + declared.name] = forms.CharField(
                label=declared.name,
                required=declared.required,
                help_text=declared.help_text,
                strip=False,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
                if declared.secret
                else forms.TextInput(attrs={"autocomplete": "off"}),
            )

    def provider_fields(self) -> dict[str, str]:
        return {
            name.removeprefix(FIELD_PREFIX): value
            for name, value in self.cleaned_data.items()
            if name.startswith(FIELD_PREFIX)
        }

    def add_service_errors(self, error: ValidationError) -> None:
        """Show a service's ValidationError ("fields.token", "grace_seconds") on its input."""
        for key, messages in error.message_dict.items():
            name = key.replace("fields.", FIELD_PREFIX, 1)
            self.add_error(name if name in self.fields else None, messages)


class ProviderChoiceForm(forms.Form):
    """Step one of creating a credential: which provider and purpose decide the inputs."""

    provider = forms.ChoiceField()
    # Owned purposes (a subscription's signing secret) are created with their owner.
    purpose = forms.ChoiceField(
        choices=[c for c in Credential.Purpose.choices if c[0] not in OWNED_PURPOSES]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(p.key, p.name) for p in providers()]

    def clean(self):
        cleaned = super().clean()
        provider, purpose = cleaned.get("provider"), cleaned.get("purpose")
        if provider and purpose and purpose not in get_provider(provider).credential_fields:
            raise ValidationError(f"{provider} takes no {purpose} credential.")
        return cleaned


class CredentialCreateForm(ProviderFieldsMixin, forms.Form):
    customer = forms.ModelChoiceField(
        Customer.objects.all(),
        required=False,
        help_text="For a customer-specific credential; leave region and tier empty then.",
    )
    region = forms.ModelChoiceField(Region.objects.all(), required=False)
    tier = forms.ChoiceField(choices=[("", "any tier"), *Tier.choices], required=False)
    label = forms.CharField(max_length=200, required=False)
    allow_cross_region = forms.BooleanField(
        required=False, help_text=Credential._meta.get_field("allow_cross_region").help_text
    )

    def __init__(self, *args, provider: str, purpose: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_provider_fields(provider, purpose)


class CredentialRotateForm(ProviderFieldsMixin, forms.Form):
    grace_seconds = forms.IntegerField(
        min_value=0,
        max_value=MAX_GRACE_SECONDS,
        initial=DEFAULT_GRACE_SECONDS,
        label="Grace period (seconds)",
        help_text="The old secret stays accepted this long (inbound signatures, calls in "
        "flight); 0 revokes it at once.",
    )
    reason = forms.CharField(max_length=1000, required=False, widget=forms.TextInput)
    confirm = forms.BooleanField(
        label="I understand that calls switch to the new secret now",
        help_text="The new secret becomes current immediately.",
    )

    def __init__(self, *args, credential: Credential, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_provider_fields(credential.provider, credential.purpose)
        # Secrets first, like the password change page; the confirmation last.
        self.order_fields([n for n in self.fields if n.startswith(FIELD_PREFIX)])
