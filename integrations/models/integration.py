from django.core.exceptions import ValidationError
from django.db import models
from rest_framework.exceptions import ValidationError as DrfValidationError

from integrations.registry import ProviderNotRegistered, get_provider

__all__ = ("Integration",)


def _flatten(detail, prefix: str = "") -> list[str]:
    """DRF's nested error detail as "field: message" lines for Django's ValidationError."""
    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _flatten(value, f"{prefix}{key}.")]
    if isinstance(detail, list):
        return [m for value in detail for m in _flatten(value, prefix)]
    return [f"{prefix.rstrip('.')}: {detail}" if prefix else str(detail)]


class Integration(models.Model):
    """A customer's connection to one provider: which provider serves the customer's
    capabilities, and the non-secret settings to reach it. Secrets live in credentials."""

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="integrations"
    )
    provider_key = models.CharField(
        max_length=32, db_index=True, help_text="A registered provider key, e.g. 'trello'."
    )
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text='Non-secret settings validated by the provider: base_url, stages {"name": id}, '
        "board_id, rate_limit, retry, …",
    )
    active = models.BooleanField(
        default=True, help_text="Only an active integration routes capabilities and checks."
    )
    trusted = models.BooleanField(
        default=False,
        help_text="Set by an admin: credentials shared by several customers (global, region, "
        "tier) may be sent to this integration's base_url. Without it they go only to the "
        "provider's own hosts.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer__slug", "provider_key", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "provider_key"],
                condition=models.Q(active=True),
                name="integration_one_active_per_customer_provider",
                violation_error_message="This customer already has an active integration with "
                "this provider.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer} → {self.provider_key}"

    def clean(self):
        try:
            provider = get_provider(self.provider_key)
        except ProviderNotRegistered as exc:
            raise ValidationError({"provider_key": str(exc)}) from None
        try:
            self.config = provider.clean_config(self.config)
        except DrfValidationError as exc:
            raise ValidationError({"config": _flatten(exc.detail)}) from None
