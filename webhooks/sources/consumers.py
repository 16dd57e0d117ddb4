"""What every queue consumer shares: the endpoints it serves, the broker secret from the vault,
and the one rule that makes a killed consumer lose nothing: a message is acknowledged only after
its event is stored (``message_store`` returns once the row is committed), so a redelivered
message is a duplicate that the store path recognises and the consumer acknowledges again."""

from __future__ import annotations

import structlog
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials.models import CredentialVersion
from credentials.services import version_decrypt
from webhooks.models import WebhookEndpoint
from webhooks.services import inbound_message_store
from webhooks.sources.eventbridge import QueueMessage

__all__ = (
    "SourceNotConfigured",
    "broker_secret",
    "endpoints_consumed",
    "message_store",
    "source_status",
)

logger = structlog.stdlib.get_logger(__name__)


class SourceNotConfigured(Exception):
    """The endpoint cannot be consumed as configured; the message names what is missing."""


def endpoints_consumed(*, source: str, endpoint_id=None) -> list[WebhookEndpoint]:
    """Active endpoints of ``source`` whose customer is active (or the one named)."""
    endpoints = WebhookEndpoint.objects.select_related("customer", "source_credential").filter(
        source=source, active=True, customer__active=True
    )
    if endpoint_id is not None:
        endpoints = endpoints.filter(public_id=endpoint_id)
    return list(endpoints.order_by("pk"))


@sensitive_variables()
def broker_secret(endpoint: WebhookEndpoint) -> dict[str, str]:
    """The fields of the current version of the endpoint's broker credential."""
    credential = endpoint.source_credential
    if credential is None or not credential.enabled:
        raise SourceNotConfigured(f"Endpoint {endpoint.public_id} has no usable broker credential.")
    version = credential.versions.filter(state=CredentialVersion.State.CURRENT).first()
    if version is None:
        raise SourceNotConfigured(f"Credential {credential.pk} has no current version.")
    return version_decrypt(version)


def message_store(endpoint: WebhookEndpoint, message: QueueMessage) -> bool:
    """Store one message's event (committed when this returns); True if new, False for a
    duplicate. Database errors propagate: the caller then acknowledges nothing."""
    _, created = inbound_message_store(
        endpoint=endpoint,
        body=message.body,
        headers=message.headers,
        fallback_id=message.fallback_id,
    )
    return created


def source_status(endpoint: WebhookEndpoint, *, error: str = "") -> None:
    """Record what the last round of a source did: when it last worked, or why it did not."""
    now = timezone.now()
    changes = {"source_error": error[:2000]}
    if not error:
        changes["source_seen_at"] = now
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(**changes)
    if error:
        logger.warning(
            "sources.failed",
            endpoint=str(endpoint.public_id),
            provider=endpoint.provider,
            customer=endpoint.customer.slug,
            source=endpoint.source,
            error=error[:300],
        )
