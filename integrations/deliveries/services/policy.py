"""The retry policy a delivery follows: its provider's defaults, as its integration's config
adjusts them."""

from integrations.deliveries.retry import RetryPolicy, policy_for
from integrations.models import Integration
from integrations.registry import get_provider

__all__ = ("retry_policy",)


def retry_policy(provider_key: str, integration: Integration | None) -> RetryPolicy:
    config = integration.config if integration else {}
    return policy_for(get_provider(provider_key).retry_settings(config))
