"""Writes for integrations, and the connection check operators run."""

from collections.abc import Mapping

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from credentials.services import CredentialNotConfigured, credential_resolve
from customers.models import Customer
from integrations import egress
from integrations.deliveries.send import CallOutcome, connection_check
from integrations.deliveries.services.tokens import token_refresh_outcome
from integrations.models import Integration
from integrations.oauth import TokenRefreshFailed, oauth_token_fresh
from integrations.providers.types import CredentialPurpose
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
    """Apply ``changes``. Trust was given to one customer's base_url at one provider: a change
    of any of them drops it unless the same change sets ``trusted`` again."""
    saved = Integration.objects.filter(pk=integration.pk).values(
        "customer_id", "provider_key", "config"
    )[0]  # the row, not the instance: an admin form has already applied its changes to it
    after = {
        "customer_id": getattr(changes.get("customer"), "pk", saved["customer_id"]),
        "provider_key": changes.get("provider_key", saved["provider_key"]),
        "base_url": (changes.get("config") or saved["config"]).get("base_url"),
    }
    before = {**saved, "base_url": saved["config"].get("base_url")}
    if any(after[k] != before[k] for k in after) and "trusted" not in changes:
        changes["trusted"] = False
    for name, value in changes.items():
        setattr(integration, name, value)
    integration.full_clean()
    integration.save(update_fields=[*changes, "updated_at"])
    return integration


@sensitive_variables("fields", "resolved")
def integration_check(*, integration: Integration) -> CallOutcome:
    """Run the provider's cheap authenticated read with the credential that calls would use now,
    within SWITCHYARD_CHECK_DEADLINE_SECONDS.

    Raises ``CredentialNotConfigured`` when the provider needs a credential
    and none resolves for the integration's customer."""
    provider = get_provider(integration.provider_key)
    try:
        resolved = credential_resolve(
            provider=provider.key, customer=integration.customer, purpose=CredentialPurpose.API
        )
        # An expiring OAuth 2.0 token is refreshed first, as a delivery's would be.
        resolved = oauth_token_fresh(
            provider_key=provider.key,
            customer=integration.customer,
            resolved=resolved,
            config=integration.config,
            trusted=integration.trusted,
        )
        fields, shared = resolved.fields, resolved.shared
    except TokenRefreshFailed as exc:
        return token_refresh_outcome(exc)
    except CredentialNotConfigured:
        # A provider whose API fields are all optional (an open Grid) can be checked without one.
        if provider.missing_credentials({}):
            raise
        fields, shared = {}, False
    # Through egress like every call, held to a short total deadline: a check runs in a web
    # worker, which a slow or dripping server must not tie up.
    deadline = float(settings.SWITCHYARD_CHECK_DEADLINE_SECONDS)
    return connection_check(
        integration=integration,
        credentials=fields,
        session=egress.session_for(provider.key),
        timeout=provider.timeouts(integration.config, deadline=deadline),
        deadline=deadline,
        credential_shared=shared,
    )
