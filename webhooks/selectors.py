"""Reads for webhook endpoints, inbound events and subscriptions, scoped by API key."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q, QuerySet
from django.views.decorators.debug import sensitive_variables

from credentials.services import credential_verification_secrets
from customers.models import ApiKey
from customers.selectors import customers_visible_to
from webhooks.models import EndpointSource, InboundEvent, Subscription, WebhookEndpoint

__all__ = (
    "ENDPOINT_CACHE_SECONDS",
    "OutboundMessage",
    "ReceivingEndpoint",
    "endpoint_get",
    "endpoint_get_public",
    "endpoint_list",
    "endpoint_receive_url",
    "endpoint_receiving",
    "event_type_matches",
    "inbound_event_get",
    "inbound_event_list",
    "outbound_message",
    "subscription_get",
    "subscription_list",
    "subscriptions_receiving",
)


def endpoint_list(*, api_key: ApiKey | None) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.select_related("customer").filter(
        customer__in=customers_visible_to(api_key)
    )


def endpoint_get(*, api_key: ApiKey | None, pk) -> WebhookEndpoint | None:
    return endpoint_list(api_key=api_key).filter(pk=pk).first()


def endpoint_get_public(*, api_key: ApiKey | None, public_id) -> WebhookEndpoint | None:
    """By the id the API shows (``public_id``), within the key's customers."""
    return endpoint_list(api_key=api_key).filter(public_id=public_id).first()


def endpoint_receive_url(*, endpoint: WebhookEndpoint, request=None) -> str:
    """The URL a provider is given (Trello signs with exactly this string): the public URL when
    configured, else the address the API request itself came to."""
    if settings.SWITCHYARD_PUBLIC_URL or request is None:
        return settings.SWITCHYARD_PUBLIC_URL + endpoint.path
    return request.build_absolute_uri(endpoint.path)


# The receiver's endpoint and verification secrets are kept per process this long, sparing two
# queries and a decryption per webhook. A secret rotated in meanwhile is picked up at once (a
# refusal against the cached copy is checked again against the database); a deactivated
# endpoint or customer, or a revoked or expired secret, is honoured up to this many seconds late.
ENDPOINT_CACHE_SECONDS = 5.0
ENDPOINT_CACHE_SIZE = 1024
_receiving: dict[tuple[str, str], ReceivingEndpoint] = {}


@dataclass(frozen=True)
class ReceivingEndpoint:
    endpoint: WebhookEndpoint
    # (version number, secret) of every unexpired credential version, newest first.
    secrets: tuple[tuple[int, str], ...] = field(repr=False)
    expires_at: float
    cached: bool


# Every local: the secrets, and the frames below that hold them under other names.
@sensitive_variables()
def endpoint_receiving(
    *, provider: str, endpoint_id, refresh: bool = False
) -> ReceivingEndpoint | None:
    """The active endpoint at a receive URL with its verification secrets, from this process's
    cache unless ``refresh`` or older than ENDPOINT_CACHE_SECONDS; None when there is none (not
    cached, so a new endpoint works at once)."""
    key = (provider, str(endpoint_id))
    now = time.monotonic()
    hit = _receiving.get(key)
    if hit is not None and not refresh and hit.expires_at > now:
        return hit
    endpoint = (
        WebhookEndpoint.objects.select_related("credential", "customer")
        .filter(public_id=endpoint_id, provider=provider, active=True, customer__active=True)
        # A queue's or a polled board's events carry no signature: never taken over HTTP.
        .filter(source=EndpointSource.WEBHOOK)
        .first()
    )
    if endpoint is None:
        _receiving.pop(key, None)
        return None
    secrets = tuple(
        (version, fields.get("secret", ""))
        for version, fields in credential_verification_secrets(credential=endpoint.credential)
    )
    if len(_receiving) >= ENDPOINT_CACHE_SIZE:
        _receiving.clear()
    _receiving[key] = ReceivingEndpoint(
        endpoint=endpoint, secrets=secrets, expires_at=now + ENDPOINT_CACHE_SECONDS, cached=True
    )
    return ReceivingEndpoint(endpoint=endpoint, secrets=secrets, expires_at=now, cached=False)


def inbound_event_list(*, api_key: ApiKey | None, filters: dict | None = None):
    events = InboundEvent.objects.select_related("endpoint__customer").filter(
        endpoint__customer__in=customers_visible_to(api_key)
    )
    filters = filters or {}
    for name, lookup in (
        ("status", "status"),
        ("provider", "provider"),
        ("type", "type"),
        ("external_id", "external_id"),
        ("customer", "endpoint__customer__slug"),
        ("endpoint", "endpoint_id"),
        ("received_after", "received_at__gte"),
        ("received_before", "received_at__lt"),
    ):
        if filters.get(name) is not None:
            events = events.filter(**{lookup: filters[name]})
    return events


def inbound_event_get(*, api_key: ApiKey | None, pk) -> InboundEvent | None:
    return inbound_event_list(api_key=api_key).filter(pk=pk).first()


def subscription_list(*, api_key: ApiKey | None) -> QuerySet[Subscription]:
    """Unrestricted keys see every subscription; restricted ones those of their customers."""
    subscriptions = Subscription.objects.select_related(
        "customer", "signing_credential"
    ).prefetch_related("signing_credential__versions")
    if api_key is not None and api_key.customer_limited:
        subscriptions = subscriptions.filter(customer__in=customers_visible_to(api_key))
    return subscriptions


def subscription_get(*, api_key: ApiKey | None, pk) -> Subscription | None:
    return subscription_list(api_key=api_key).filter(pk=pk).first()


def event_type_matches(patterns: list[str], event_type: str) -> bool:
    """``*`` matches everything, ``trello.*`` every type starting with ``trello.``."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def subscriptions_receiving(*, customer_ids) -> dict[int, list[Subscription]]:
    """Active subscriptions that receive each customer's events (its own and the global ones),
    in one query for a batch of events; ``event_type_matches`` picks those for an event."""
    if not customer_ids:
        return {}
    active = list(
        Subscription.objects.filter(active=True)
        .filter(Q(customer__isnull=True) | Q(customer_id__in=customer_ids))
        .order_by("pk")
    )
    return {
        customer_id: [s for s in active if s.customer_id in (None, customer_id)]
        for customer_id in customer_ids
    }


@sensitive_variables()
def _signing_secrets(subscription: Subscription) -> list[tuple[int, str]]:
    """(version, secret) of the current version first, then every version still in its grace
    period, from the subscription's signing credential."""
    if subscription.signing_credential is None:
        return []
    return [
        (version, fields["secret"])
        for version, fields in credential_verification_secrets(
            credential=subscription.signing_credential
        )
    ]


@dataclass(frozen=True)
class OutboundMessage:
    url: str
    allow_private: bool
    envelope: dict
    # Kept out of repr so that logging a message never shows a secret.
    secrets: list[str] = field(repr=False)
    # The subscription's signing credential and the versions of ``secrets``, in order.
    signing_credential: object = None
    versions: tuple[int, ...] = ()


def outbound_message(
    *, subscription_id: int, event_id: int, customer_id: int | None
) -> OutboundMessage | None:
    """What to send to an active subscription for an event of ``customer_id`` (the delivery's
    customer); None if either is gone, the subscription was disabled meanwhile, or either
    belongs to another customer (a global subscription serves every customer)."""
    if customer_id is None:
        return None
    subscription = (
        Subscription.objects.select_related("signing_credential")
        .filter(pk=subscription_id, active=True)
        .filter(Q(customer__isnull=True) | Q(customer_id=customer_id))
        .first()
    )
    event = InboundEvent.objects.filter(
        pk=event_id, envelope__isnull=False, endpoint__customer_id=customer_id
    ).first()
    if subscription is None or event is None:
        return None
    signing = _signing_secrets(subscription)
    return OutboundMessage(
        url=subscription.url,
        allow_private=subscription.allow_private,
        envelope=event.envelope,
        secrets=[secret for _, secret in signing],
        signing_credential=subscription.signing_credential,
        versions=tuple(version for version, _ in signing),
    )
