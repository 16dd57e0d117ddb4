"""Webhook endpoints: where a provider's webhooks for one customer arrive, verified with one
credential."""

from django.core.exceptions import ValidationError

from credentials.models import Credential
from customers.models import Customer
from integrations.providers.types import CredentialPurpose
from integrations.registry import ProviderNotRegistered, get_provider
from webhooks.models import WebhookEndpoint

__all__ = ("endpoint_active_set", "endpoint_create", "endpoint_tolerance_check")


def endpoint_tolerance_check(*, provider: str, tolerance_seconds: int | None) -> None:
    """A timestamp tolerance only means something where the provider signs a timestamp (an
    unknown provider is left for ``endpoint_create`` to refuse)."""
    try:
        signs_timestamp = get_provider(provider).webhook_tolerance_seconds is not None
    except ProviderNotRegistered:
        return
    if tolerance_seconds is not None and not signs_timestamp:
        raise ValidationError(
            {
                "tolerance_seconds": f"Provider '{provider}' signs no timestamp; leave the "
                "tolerance empty."
            }
        )


def endpoint_create(
    *,
    customer: Customer,
    provider: str,
    credential: Credential,
    active: bool = True,
    tolerance_seconds: int | None = None,
) -> WebhookEndpoint:
    try:
        verifies = get_provider(provider).verifies_webhooks
    except ProviderNotRegistered as exc:
        raise ValidationError({"provider": str(exc)}) from None
    if not verifies:
        raise ValidationError({"provider": f"Provider '{provider}' does not send webhooks."})
    endpoint_tolerance_check(provider=provider, tolerance_seconds=tolerance_seconds)
    if (
        credential.provider != provider
        or credential.purpose != CredentialPurpose.WEBHOOK_SIGNING
        or credential.customer_id not in (None, customer.pk)
    ):
        raise ValidationError(
            {
                "credential": f"Credential {credential.pk} is not a {provider} webhook_signing "
                f"credential usable by customer '{customer.slug}'."
            }
        )
    return WebhookEndpoint.objects.create(
        customer=customer,
        provider=provider,
        credential=credential,
        active=active,
        tolerance_seconds=tolerance_seconds,
    )


def endpoint_active_set(*, endpoint: WebhookEndpoint, active: bool) -> bool:
    """Pause (the receive URL answers 404, so the provider retries later) or resume an
    endpoint; False when it already was so. The receiver notices within its cache time."""
    updated = (
        WebhookEndpoint.objects.filter(pk=endpoint.pk).exclude(active=active).update(active=active)
    )
    endpoint.refresh_from_db()
    return bool(updated)
