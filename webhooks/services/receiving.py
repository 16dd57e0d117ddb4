"""Receiving: verify one webhook, identify it and store it, committed before it is acknowledged.
The receiver queues nothing: the stored row is the outbox (``relay``).

Events that arrive another way (a queue message, a change found by polling a board) take the
same path after verification (``inbound_message_store``): one identification, one unique
insert, one outbox."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import nullcontext

import structlog
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from config import tracing
from config.db import insert_one
from credentials.services import credential_version_mark_used
from integrations.deliveries.retry import RetryPolicy
from integrations.providers.types import PayloadInvalid, SignatureInvalid
from integrations.providers.wire import parse_json_body
from integrations.registry import ProviderNotRegistered, get_provider
from webhooks import selectors
from webhooks.models import InboundEvent, WebhookEndpoint

__all__ = (
    "EndpointNotFound",
    "SignatureRejected",
    "inbound_message_store",
    "inbound_webhook_receive",
)

logger = structlog.stdlib.get_logger(__name__)

Status = InboundEvent.Status


class EndpointNotFound(Exception):
    pass


class SignatureRejected(Exception):
    """The message is the verifier's reason, never a secret."""


def _reject(endpoint: WebhookEndpoint, reason: str) -> SignatureRejected:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        rejected_signatures=F("rejected_signatures") + 1, last_rejected_at=timezone.now()
    )
    logger.warning(
        "webhooks.signature_rejected",
        endpoint=str(endpoint.public_id),
        provider=endpoint.provider,
        customer=endpoint.customer.slug,
        reason=reason,
    )
    return SignatureRejected(reason)


# Named, so the page still shows the request; "secrets"/"secret" also cover the frames below
# (a verifier without a decorator of its own).
@sensitive_variables("receiving", "secrets", "secret")
def inbound_webhook_receive(
    *,
    provider: str,
    endpoint_id,
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    remote_ip: str | None,
) -> tuple[InboundEvent, bool]:
    """Verify and store one webhook; returns (event, created). ``created`` is False for a
    duplicate of an event already stored, which is not processed again.

    Raises ``EndpointNotFound`` or ``SignatureRejected`` (counted on the endpoint); database
    errors propagate so the provider is told to retry. A correctly signed body that cannot be
    processed (not a JSON object, too deep, ``NaN``, a NUL character, no event id) is stored
    as it came and dead-lettered at once with the reason: it is acknowledged like any other,
    since a provider would retry a refused one for days or disable the endpoint."""
    try:
        adapter = get_provider(provider)
    except ProviderNotRegistered:
        raise EndpointNotFound from None
    endpoint, version = _verified(adapter, provider, endpoint_id, body, headers, url)
    credential_version_mark_used(credential=endpoint.credential, version=version)
    return _store(adapter, endpoint, body, headers, version=version, remote_ip=remote_ip)


def inbound_message_store(
    *,
    endpoint: WebhookEndpoint,
    body: bytes,
    headers: Mapping[str, str],
    fallback_id: str = "",
) -> tuple[InboundEvent, bool]:
    """Store one event of ``endpoint`` that came by a queue or by polling, not as a signed
    webhook: identified, de-duplicated and stored exactly as the receiver does. Returns (event,
    created); a duplicate is (the stored one, False). ``fallback_id``: the transport's own
    message id, the event's id when the provider's cannot be read from it. A caller
    acknowledges its message only after this returns: the row is then committed (or part of
    the caller's transaction, which must commit before it acknowledges)."""
    adapter = get_provider(endpoint.provider)
    return _store(adapter, endpoint, body, headers, fallback_id=fallback_id)


def _store(
    adapter,
    endpoint: WebhookEndpoint,
    body: bytes,
    headers: Mapping[str, str],
    *,
    version: int | None = None,
    remote_ip: str | None = None,
    fallback_id: str = "",
) -> tuple[InboundEvent, bool]:
    external_id, malformed = _identified(adapter, body, headers, fallback_id)
    now = timezone.now()
    # Due at once with no task: the next relay pass queues it.
    event = InboundEvent(
        endpoint=endpoint,
        provider=endpoint.provider,
        external_id=external_id,
        body=body,
        headers=adapter.stored_headers(headers),
        remote_ip=remote_ip,
        signature_version=version,
        trace_parent=tracing.traceparent(),
        attempt_limit=RetryPolicy().max_attempts,
        next_attempt_at=None if malformed else now,
        **({"status": Status.DEAD, "error": malformed, "processed_at": now} if malformed else {}),
    )
    stored, created = _stored(event)
    if created:
        logger.info(
            "webhooks.received",
            event_id=event.pk,
            external_id=event.external_id,
            endpoint=str(endpoint.public_id),
            provider=endpoint.provider,
            customer=endpoint.customer.slug,
            source=endpoint.source,
            signature_version=version,
            **({"status": Status.DEAD, "reason": "malformed_payload"} if malformed else {}),
        )
    return stored, created


def _stored(event: InboundEvent) -> tuple[InboundEvent, bool]:
    """INSERT ``event``; (event, True), or (the one stored before, False) for a duplicate."""
    # In autocommit the INSERT commits on its own, one round trip instead of BEGIN, INSERT,
    # COMMIT; inside a caller's transaction a savepoint keeps a duplicate from spoiling it.
    nested = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if nested else nullcontext():
            insert_one(event)
    except IntegrityError:
        existing = InboundEvent.objects.filter(
            endpoint_id=event.endpoint_id, external_id=event.external_id
        ).first()
        if existing is None:
            raise
        logger.info(
            "webhooks.duplicate",
            event_id=existing.pk,
            external_id=event.external_id,
            provider=event.provider,
            customer=event.endpoint.customer.slug,
        )
        return existing, False
    return event, True


@sensitive_variables("receiving")
def _verified(adapter, provider: str, endpoint_id, body: bytes, headers, url: str):
    """(endpoint, version of the secret that signed it), or raise."""
    for refresh in (False, True):
        receiving = selectors.endpoint_receiving(
            provider=provider, endpoint_id=endpoint_id, refresh=refresh
        )
        if receiving is None:
            raise EndpointNotFound
        try:
            version = adapter.verify(
                body,
                headers,
                list(receiving.secrets),
                url,
                tolerance=receiving.endpoint.tolerance_seconds,
            )
            return receiving.endpoint, version
        except SignatureInvalid as exc:
            # A refusal against the cached copy is checked again against the database: the
            # secret may have been rotated in the last few seconds.
            if receiving.cached and not refresh:
                continue
            raise _reject(receiving.endpoint, str(exc)) from None


def _identified(adapter, body: bytes, headers, fallback_id: str = "") -> tuple[str, str]:
    """(the provider's event id, the reason it cannot be processed or ""). A body without an id
    of its own is identified by the transport's message id if there is one, else by its digest,
    so that a redelivery is still a duplicate."""
    try:
        parse_json_body(body)
        return adapter.event_id(body, headers)[:255], ""
    except PayloadInvalid as exc:
        reason = f"Malformed payload: {exc}"
        if fallback_id and _parses(body):
            return fallback_id[:255], ""
    try:
        return adapter.event_id(body, headers)[:255], reason
    except (PayloadInvalid, RecursionError):
        if fallback_id:
            return fallback_id[:255], reason
        return f"sha256:{hashlib.sha256(body).hexdigest()}", reason


def _parses(body: bytes) -> bool:
    try:
        parse_json_body(body)
    except PayloadInvalid:
        return False
    return True
