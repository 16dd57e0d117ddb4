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
    *,
    customer: Customer,
    provider_key: str,
    config: Mapping | None = None,
    active: bool = True,
    trusted: bool = False,
) -> Integration:
    integration = Integration(
        customer=customer,
        provider_key=provider_key,
        config=dict(config or {}),
        active=active,
        trusted=trusted,
    )
    integration.full_clean()
    integration.save()
    return integration


def integration_update(*, integration: Integration, **changes) -> Integration:
    """Apply ``changes``. Trust was given to one base_url: a new one drops it unless the same
    change sets ``trusted`` again."""
    new_base_url = (changes.get("config") or integration.config).get("base_url")
    if new_base_url != integration.config.get("base_url") and "trusted" not in changes:
        changes["trusted"] = False
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
        resolved = credential_resolve(
            provider=provider.key, customer=integration.customer, purpose=CredentialPurpose.API
        )
        fields, shared = resolved.fields, resolved.shared
    except CredentialNotConfigured:
        # A provider whose API fields are all optional (an open Grid) can be checked without one.
        if provider.missing_credentials({}):
            raise
        fields, shared = {}, False
    if session is not None:
        return connection_check(
            integration=integration, credentials=fields, session=session, credential_shared=shared
        )
    with requests.Session() as own_session:
        return connection_check(
            integration=integration,
            credentials=fields,
            session=own_session,
            credential_shared=shared,
        )
