"""The vault's part of the data lifecycle: erasure of a customer's credentials (every version
revoked, every ciphertext destroyed, audited) and retention of the audit entries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from credentials.models import Credential, CredentialAuditEntry, CredentialVersion
from credentials.services.lifecycle import credential_revoke
from customers.lifecycle import Erased, RetentionRule

if TYPE_CHECKING:
    from customers.models import Customer

__all__ = ("CREDENTIAL_AUDIT", "credential_destroy", "customer_credentials_erase")


def credential_destroy(*, credential: Credential, actor=None, reason: str = "") -> int:
    """Revoke every version of ``credential`` (the current one too: it then resolves for
    nobody) and destroy every ciphertext it still holds, so no key can bring a secret back.
    Revocations are audited. Returns how many versions lost their ciphertext."""
    revoked = credential_revoke(
        credential=credential, created_by=actor, reason=reason, include_current=True
    )
    # Revocation empties the ciphertext; a version revoked before it did is emptied here.
    leftover = (
        CredentialVersion.objects.filter(credential=credential)
        .exclude(ciphertext=b"")
        .update(ciphertext=b"", key_id="")
    )
    return revoked + leftover


def customer_credentials_erase(*, customer: Customer, actor=None) -> Erased:
    """Eraser of the vault: every credential the customer owns, its subscriptions' signing
    secrets included (they carry the customer too), destroyed."""
    erased = Erased()
    reason = f"customer {customer.slug} erased"
    for credential in Credential.objects.filter(customer=customer).order_by("pk"):
        erased.add(
            CredentialVersion._meta.db_table,
            credential_destroy(credential=credential, actor=actor, reason=reason),
        )
    return erased


def _audit_expired(cutoff: datetime) -> QuerySet:
    return CredentialAuditEntry.objects.filter(created_at__lt=cutoff)


CREDENTIAL_AUDIT = RetentionRule(
    name="credential_audit",
    setting="SWITCHYARD_RETAIN_AUDIT_DAYS",
    expired=_audit_expired,
    order_by="created_at",
)
