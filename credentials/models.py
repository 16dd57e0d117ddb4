"""Credentials vault: a credential is a scope plus a history of encrypted versions.

Secrets never leave ``CredentialVersion.ciphertext`` except through ``credentials.services``;
``__str__`` and ``repr`` of every model here show metadata and hints only.
"""

from django.db import models
from django.db.models import Q

from customers.models import Customer, Region, Tier
from integrations.providers.types import CredentialPurpose

__all__ = ("OWNED_PURPOSES", "Credential", "CredentialAuditEntry", "CredentialVersion")


class Credential(models.Model):
    class Purpose(models.TextChoices):
        API = CredentialPurpose.API, "API access"
        WEBHOOK_SIGNING = CredentialPurpose.WEBHOOK_SIGNING, "Webhook signing"
        OAUTH_CLIENT = CredentialPurpose.OAUTH_CLIENT, "OAuth 2.0 client (the app's)"
        # Owned by one subscription (webhooks): created and rotated only through it.
        SUBSCRIPTION_SIGNING = "subscription_signing", "Subscription signing (owned)"

    provider = models.CharField(max_length=64, help_text="Provider key from the registry.")
    purpose = models.CharField(max_length=32, choices=Purpose.choices, default=Purpose.API)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credentials",
        help_text="Set for a customer-specific credential (then region and tier stay empty).",
    )
    region = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credentials",
        help_text="Serve customers of this region; empty means any region.",
    )
    tier = models.CharField(
        max_length=16,
        choices=Tier.choices,
        blank=True,
        help_text="Serve customers of this tier; empty means any tier.",
    )
    label = models.CharField(max_length=200, blank=True)
    allow_cross_region = models.BooleanField(
        default=False,
        help_text="May serve customers of other regions when nothing in their own region "
        "(nor a region-neutral credential) matches. Off keeps data residency strict.",
    )
    enabled = models.BooleanField(
        default=True,
        editable=False,
        help_text="Off once the credential is revoked entirely; it then resolves for nobody.",
    )
    scope_key = models.CharField(
        max_length=100,
        editable=False,
        help_text="Normalised scope, so that one enabled credential serves each scope even "
        "where NULLs would defeat a plain unique constraint.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["provider", "purpose", "scope_key"]
        permissions = [("rotate_credential", "Can rotate credential secrets")]
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=True) | Q(region__isnull=True, tier=""),
                name="credentials_customer_scope_excludes_region_tier",
            ),
            models.UniqueConstraint(
                fields=["provider", "purpose", "scope_key"],
                condition=Q(enabled=True),
                name="credentials_one_enabled_per_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.purpose} ({self.scope_label})"

    @property
    def owned(self) -> bool:
        """Owned by another object (a subscription): not listed under /api/v1/credentials/,
        never resolved for calls, rotated only through its owner."""
        return self.purpose in OWNED_PURPOSES

    @property
    def scope_label(self) -> str:
        if self.owned:
            return self.scope_key.replace(":", " ", 1)  # "subscription 7"
        if self.customer_id:
            return f"customer {self.customer}"
        parts = [
            f"region {self.region}" if self.region_id else "",
            self.tier and f"tier {self.tier}",
        ]
        return ", ".join(p for p in parts if p) or "global"

    def compute_scope_key(self) -> str:
        if self.customer_id:
            return f"customer:{self.customer_id}"
        return f"region:{self.region_id or '*'}|tier:{self.tier or '*'}"


# Purposes whose credentials belong to one object of another app, which sets their scope_key
# ("subscription:<id>") and is the only way to rotate them.
OWNED_PURPOSES = frozenset({Credential.Purpose.SUBSCRIPTION_SIGNING})


class CredentialVersion(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        CURRENT = "current", "Current"
        PREVIOUS = "previous", "Previous (in grace)"
        REVOKED = "revoked", "Revoked"

    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    ciphertext = models.BinaryField(
        editable=False,
        help_text="AES-GCM nonce + ciphertext of the fields as one JSON object, bound to this "
        "row; emptied on revocation.",
    )
    key_id = models.CharField(
        max_length=32,
        blank=True,
        editable=False,
        help_text="Id of the master key that encrypted the ciphertext.",
    )
    fingerprint = models.CharField(
        max_length=64,
        editable=False,
        help_text="HMAC-SHA256 of the secret under a key derived from the master key; "
        "identifies a secret without revealing it.",
    )
    created_by = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    grace_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A previous version is still accepted until then, and revoked afterwards.",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["credential", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "version"], name="credentials_version_unique"
            ),
            # The database, not the code path, guarantees that concurrent rotations never
            # leave two current (or two pending) versions.
            models.UniqueConstraint(
                fields=["credential"],
                condition=Q(state="current"),
                name="credentials_one_current_version",
            ),
            models.UniqueConstraint(
                fields=["credential"],
                condition=Q(state="pending"),
                name="credentials_one_pending_version",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.state}, {self.hint})"

    @property
    def hint(self) -> str:
        return f"…{self.fingerprint[-4:]}" if self.fingerprint else ""


class CredentialAuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATE = "create", "Created"
        ROTATE = "rotate", "Rotated"
        REVOKE = "revoke", "Revoked"
        EXPIRE = "expire", "Grace period expired"

    credential = models.ForeignKey(
        Credential, on_delete=models.PROTECT, related_name="audit_entries"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField(null=True, blank=True)
    actor = models.CharField(
        max_length=200, help_text="'user:<name>', 'api-key:<name>' or 'system' (upkeep)."
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "credential audit entries"

    def __str__(self) -> str:
        return f"{self.get_action_display()} credential {self.credential_id} by {self.actor}"
