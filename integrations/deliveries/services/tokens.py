"""OAuth 2.0 tokens of a delivery's credential (integrations/oauth.py): refreshed before they
expire and once on a 401, the batch's cached credential replaced by the new version."""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables

from credentials.services import ResolvedCredential
from integrations.deliveries.models import Delivery
from integrations.deliveries.send import CallOutcome
from integrations.oauth import TokenRefreshFailed, oauth_refreshable, oauth_token_fresh
from integrations.providers.types import Outcome
from integrations.registry import get_provider

__all__ = (
    "TOKEN_CONFIGURATION_ERRORS",
    "TokenRefreshFailed",
    "delivery_token_fresh",
    "token_refresh_outcome",
    "token_refresh_wanted",
)

# Error classes of refresh failures that are the operator's to fix (dead reason: configuration).
TOKEN_CONFIGURATION_ERRORS = frozenset(
    {"oauth_client_not_configured", "oauth_invalid_client", "credential_not_allowed"}
)

_OUTCOME_OF_KIND = {
    "reauthorise": Outcome.AUTH_FAILED,
    "configuration": Outcome.TERMINAL,
    "transient": Outcome.RETRYABLE,
}


@sensitive_variables("credentials", "resolved", "fresh")
def delivery_token_fresh(
    delivery: Delivery,
    cached: dict,
    credentials,
    resolved: ResolvedCredential | None,
    *,
    force: bool = False,
):
    """(credential fields, resolved credential) to send ``delivery`` with: refreshed when the
    access token is due or ``force``; ``cached`` (the batch's credentials by provider and
    customer) then holds the new version. Raises ``TokenRefreshFailed``."""
    integration = delivery.integration
    fresh = oauth_token_fresh(
        provider_key=delivery.provider_key,
        customer=delivery.customer,
        resolved=resolved,
        config=integration.config if integration else {},
        trusted=bool(integration and integration.trusted),
        force=force,
    )
    if fresh is resolved:
        return credentials, resolved
    cached[delivery.provider_key, delivery.customer_id] = (fresh.fields, fresh)
    return fresh.fields, fresh


def token_refresh_wanted(delivery: Delivery, outcome, resolved) -> bool:
    """The provider answered 401 to a token that can be refreshed."""
    return (
        isinstance(outcome, CallOutcome)
        and outcome.outcome == Outcome.AUTH_FAILED
        and oauth_refreshable(get_provider(delivery.provider_key), resolved)
    )


def token_refresh_outcome(exc: TokenRefreshFailed) -> CallOutcome:
    """The attempt's outcome when the refresh failed: a grant that is gone dead-letters
    (auth_failed) with the re-authorise reason; a network failure is retried."""
    return CallOutcome(_OUTCOME_OF_KIND[exc.kind], error=str(exc), error_class=exc.error_class)
