"""Errors callers of ``credentials.services`` handle; messages never contain secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from customers.models import Customer

__all__ = ("CredentialConflict", "CredentialNotConfigured")


class CredentialNotConfigured(Exception):
    """No credential serves this customer: a configuration error, so retrying cannot help."""

    retryable = False

    def __init__(self, *, provider: str, customer: Customer, purpose: str):
        self.provider = provider
        self.customer_slug = customer.slug
        self.region = customer.region.code
        super().__init__(
            f"No {purpose} credential for provider '{provider}' serves customer "
            f"'{customer.slug}' in region '{self.region}' (tier {customer.tier}). Create one "
            "for the customer, its region and/or tier, or globally; another region's credential "
            "is used only if it allows cross-region use."
        )


class CredentialConflict(Exception):
    """The credential's state forbids the change (revoked, disabled, rotated concurrently,
    or its scope is already taken); the API answers 409."""
