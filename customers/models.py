from django.core.validators import RegexValidator
from django.db import models

__all__ = ("ApiKey", "ApiKeyAuditEntry", "Customer", "Region", "Tier")

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "Use lowercase letters, digits and hyphens (1-64 characters, no leading or trailing hyphen).",
)


class Tier(models.TextChoices):
    STANDARD = "standard", "Standard"
    PREMIUM = "premium", "Premium"
    ENTERPRISE = "enterprise", "Enterprise"


class Region(models.Model):
    code = models.CharField(
        max_length=32,
        unique=True,
        validators=[slug_validator],
        help_text="Short code used in the API and in credential scopes, e.g. 'eu'.",
    )
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Customer(models.Model):
    slug = models.SlugField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    region = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        related_name="customers",
        help_text="Data-residency region; picks regional credentials and provider endpoints.",
    )
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    active = models.BooleanField(
        default=True, help_text="Inactive customers cannot have new deliveries queued."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class ApiKey(models.Model):
    """A key an internal app uses as ``Authorization: Bearer sy_<prefix>_<secret>``.

    Only a SHA-256 digest of the whole key is stored; the key is shown once, at creation.
    ``scope`` says what the key may do (DESIGN §10): ``app`` acts for the customers it may see,
    ``admin`` also configures what several customers share. An ``admin`` key is never limited
    to customers."""

    class Scope(models.TextChoices):
        APP = "app", "App: act for its customers"
        ADMIN = "admin", "Admin: configure regions, customers and shared settings"

    name = models.CharField(max_length=100, help_text="Which internal app uses this key.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(
        max_length=8,
        choices=Scope.choices,
        default=Scope.APP,
        help_text="app: deliveries, integrations and webhooks of its customers. admin: also "
        "regions, customers, shared credentials, trusted integrations, allow_private and "
        "breaker errors (never together with a customer limit).",
    )
    customers = models.ManyToManyField(
        Customer,
        blank=True,
        related_name="api_keys",
        help_text="Restrict the key to these customers; empty means every customer.",
    )
    customer_limited = models.BooleanField(
        default=False,
        editable=False,
        help_text="Limited to its customers (set with them): a limited key whose customers were "
        "all deleted sees none, never every customer.",
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="The key stops working then; empty for no expiry."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (sy_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_admin(self) -> bool:
        return self.scope == self.Scope.ADMIN


class ApiKeyAuditEntry(models.Model):
    """Who created a key, changed its scope, customers or expiry, or revoked it, and when."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        CHANGE = "change", "Changed"
        REVOKE = "revoke", "Revoked"

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="audit_entries")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.CharField(max_length=200, help_text="'user:<name>', 'command' or 'system'.")
    changes = models.JSONField(
        default=dict, blank=True, help_text='{"field": [before, after]} for a change.'
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key audit entry"
        verbose_name_plural = "API key audit entries"

    def __str__(self) -> str:
        return f"{self.get_action_display()} API key {self.api_key_id} by {self.actor}"
