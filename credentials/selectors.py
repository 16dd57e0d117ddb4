"""Reads of the credentials vault. Nothing here decrypts (resolution lives in services)."""

from django.db.models import Count, QuerySet

from credentials.models import (
    OWNED_PURPOSES,
    Credential,
    CredentialAuditEntry,
    CredentialVersion,
)
from customers.models import ApiKey
from customers.selectors import customers_visible_to

__all__ = ("credential_audit_list", "credential_get", "credential_list", "version_counts_by_key")


def credential_list(*, api_key: ApiKey | None) -> QuerySet[Credential]:
    """Every credential for an admin key; an app key sees only the own credentials of the
    customers it may see (shared ones serve customers beyond any one app). Owned credentials
    (subscription signing secrets) are for nobody: their owner shows and rotates them."""
    credentials = (
        Credential.objects.exclude(purpose__in=OWNED_PURPOSES)
        .select_related("customer", "region")
        .prefetch_related("versions")
    )
    if api_key is not None and not api_key.is_admin:
        credentials = credentials.filter(customer__in=customers_visible_to(api_key))
    return credentials.order_by("pk")


def credential_get(*, api_key: ApiKey | None, pk) -> Credential | None:
    return credential_list(api_key=api_key).filter(pk=pk).first()


def credential_audit_list(*, credential: Credential) -> QuerySet[CredentialAuditEntry]:
    return credential.audit_entries.all()


def version_counts_by_key(*, purposes=None) -> dict[str, int]:
    """How many stored ciphertexts each master key id protects (revoked versions hold none),
    subscription signing secrets included; ``purposes`` counts only those purposes."""
    versions = CredentialVersion.objects.exclude(key_id="")
    if purposes is not None:
        versions = versions.filter(credential__purpose__in=purposes)
    rows = versions.values("key_id").annotate(n=Count("pk")).order_by("key_id")
    return {row["key_id"]: row["n"] for row in rows}
