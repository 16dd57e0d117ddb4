"""Writes for integrations, and the connection check operators run."""

from collections.abc import Mapping

import requests

from credentials.services import CredentialNotConfigured, credential_resolve
from customers.models import Customer
from integrations.actions import CallOutcome, connection_check
from integrations.models import Integration
from integrations.providers.base import CredentialPurpose
from integrations.registry import get_provider

__all__ = ("integration_check", "integration_create", "integration_update")


def integration_create(
    *, customer: Customer, provider_key: str, config: Mapping | None = None, active: bool = True
) -> Integration:
    integration = Integration(
        customer=customer, provider_key=provider_key, config=dict(config or {}), active=active
    )
    integration.full_clean()
    integration.save()
    return integration


def integration_update(*, integration: Integration, **changes) -> Integration:
    for name, value in changes.items():
        setattr(integration, name, value)
    integration.full_clean()
    integration.save(update_fields=[*changes, "updated_at"])
    return integration


def integration_check(
    *, integration: Integration, session: requests.Session | None = None
) -> CallOutcome:
    """Run the provider's cheap authenticated read with the credential that calls would use now.

    Raises ``CredentialNotConfigured`` when the provider needs a credential
    and none resolves for the integration's customer."""
    provider = get_provider(integration.provider_key)
    try:
        fields = credential_resolve(
            provider=provider.key, customer=integration.customer, purpose=CredentialPurpose.API
        ).fields
    except CredentialNotConfigured:
        # A provider whose API fields are all optional (an open Grid) can be checked without one.
        if provider.missing_credentials({}):
            raise
        fields = {}
    if session is not None:
        return connection_check(integration=integration, credentials=fields, session=session)
    with requests.Session() as own_session:
        return connection_check(integration=integration, credentials=fields, session=own_session)
