"""Endpoints whose events Switchyard reads itself instead of receiving webhooks: a Miro board it
polls, an SQS or AMQP queue it consumes (``webhooks.sources``). Their settings are validated and
their destinations checked against the egress policy here; their secrets are credentials in the
vault, owned by the endpoint's customer (a shared credential could be pointed at another
customer's queue)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from rest_framework import serializers

from credentials.models import Credential
from customers.models import Customer
from integrations.providers.types import CredentialPurpose
from integrations.registry import ProviderNotRegistered, get_provider
from integrations.selectors import integration_active_get
from webhooks.models import EndpointSource, WebhookEndpoint
from webhooks.sources.config import source_config_clean

__all__ = (
    "SOURCE_KINDS",
    "endpoint_settings_update",
    "endpoint_source_check",
    "endpoint_source_create",
)

SOURCE_KINDS = (EndpointSource.MIRO_POLL, EndpointSource.SQS, EndpointSource.AMQP)
# The broker credential each queue source takes (provider key of webhooks.sources.transports).
BROKER_CREDENTIALS = {EndpointSource.SQS: "amazon_sqs", EndpointSource.AMQP: "amqp"}


def _provider_check(source: str, provider: str, customer: Customer) -> None:
    try:
        adapter = get_provider(provider)
    except ProviderNotRegistered as exc:
        raise ValidationError({"provider": str(exc)}) from None
    if source == EndpointSource.SQS and provider != "shopify":
        raise ValidationError({"provider": "An sqs source reads Shopify's EventBridge events."})
    if source == EndpointSource.AMQP and not adapter.verifies_webhooks:
        raise ValidationError({"provider": f"Provider '{provider}' sends no webhooks to relay."})
    if source == EndpointSource.MIRO_POLL:
        if provider != "miro":
            raise ValidationError({"provider": "A miro_poll source polls Miro boards."})
        if integration_active_get(customer=customer, provider_key="miro") is None:
            raise ValidationError(
                {"source": f"Customer '{customer.slug}' has no active Miro integration to poll."}
            )


def _credential_check(source: str, customer: Customer, credential: Credential | None) -> None:
    wanted = BROKER_CREDENTIALS.get(source)
    if wanted is None:
        if credential is not None:
            raise ValidationError(
                {"source_credential": "Miro polling uses the customer's Miro API credential."}
            )
        return
    if (
        credential is None
        or credential.provider != wanted
        or credential.purpose != CredentialPurpose.API
        or credential.customer_id != customer.pk
    ):
        raise ValidationError(
            {
                "source_credential": f"Give an {wanted} api credential of customer "
                f"'{customer.slug}' (the broker's user name and password or keys)."
            }
        )


def _messages(detail, prefix: str = "") -> list[str]:
    """DRF's nested error detail as flat messages, each naming its field (``url: …``)."""
    if isinstance(detail, dict):
        found = []
        for name, value in detail.items():
            inner = "" if name == "source_config" else name
            found += _messages(value, f"{prefix}{inner}: " if inner else prefix)
        return found
    if isinstance(detail, list):
        return [message for value in detail for message in _messages(value, prefix)]
    return [f"{prefix}{detail}"]


def endpoint_source_check(
    *,
    customer: Customer,
    provider: str,
    source: str,
    source_config,
    source_credential: Credential | None,
) -> dict:
    """The cleaned config of a source endpoint, or ``ValidationError`` naming the field."""
    if source not in SOURCE_KINDS:
        raise ValidationError({"source": f"Choose one of: {', '.join(SOURCE_KINDS)}."})
    _provider_check(source, provider, customer)
    _credential_check(source, customer, source_credential)
    try:
        return source_config_clean(source, source_config)
    except serializers.ValidationError as exc:
        raise ValidationError({"source_config": _messages(exc.detail)}) from None


def endpoint_source_create(
    *,
    customer: Customer,
    provider: str,
    source: str,
    source_config,
    source_credential: Credential | None = None,
    active: bool = True,
) -> WebhookEndpoint:
    config = endpoint_source_check(
        customer=customer,
        provider=provider,
        source=source,
        source_config=source_config,
        source_credential=source_credential,
    )
    return WebhookEndpoint.objects.create(
        customer=customer,
        provider=provider,
        source=source,
        source_config=config,
        source_credential=source_credential,
        active=active,
    )


def endpoint_settings_update(
    *, endpoint: WebhookEndpoint, source_config=None, source_credential=False, active=None
) -> WebhookEndpoint:
    """Pause or resume an endpoint, and change a source endpoint's settings (None, or False for
    ``source_credential``: keep). A Miro board changed starts a new baseline: the marks kept
    belong to the old board."""
    if endpoint.source not in SOURCE_KINDS:
        if source_config is not None or source_credential is not False:
            raise ValidationError({"source": "A webhook endpoint has no source settings."})
        if active is not None and active != endpoint.active:
            endpoint.active = active
            endpoint.save(update_fields=["active"])
        return endpoint
    credential = endpoint.source_credential if source_credential is False else source_credential
    config = endpoint.source_config if source_config is None else source_config
    cleaned = endpoint_source_check(
        customer=endpoint.customer,
        provider=endpoint.provider,
        source=endpoint.source,
        source_config=config,
        source_credential=credential,
    )
    if cleaned.get("board_id") != endpoint.source_config.get("board_id"):
        endpoint.polled_items.all().delete()
        endpoint.source_state = {}
    endpoint.source_config, endpoint.source_credential = cleaned, credential
    if active is not None:
        endpoint.active = active
    endpoint.save()
    return endpoint
