"""Standard Webhooks (https://www.standardwebhooks.com, reference/webhook-platforms.md §4):
``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64>`` (several, space
separated, during rotation) over ``"{id}.{timestamp}.{body}"``, 5 minutes tolerance both ways.

Signatures are computed by the maintained ``standardwebhooks`` library; the timestamp check is ours
so that "now" can be injected and every secret version can be tried.

Outbound, ``sign_headers`` signs what the webhooks app's ``standard_webhooks.send`` posts
(webhooks/outbound.py)."""

import binascii
import hmac
import time
from datetime import UTC, datetime

from django.views.decorators.debug import sensitive_variables
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from integrations.constants import (
    HEADER_WEBHOOK_ID,
    HEADER_WEBHOOK_SIGNATURE,
    HEADER_WEBHOOK_TIMESTAMP,
)
from integrations.providers.base import BaseProvider
from integrations.providers.types import (
    CredentialField,
    CredentialPurpose,
    NormalisedEvent,
    PayloadInvalid,
    SignatureInvalid,
)
from integrations.providers.wire import check_secrets, headers_lower, parse_json_body, unix_seconds
from integrations.registry import register

__all__ = ("StandardWebhooksProvider", "sign_headers")

SCHEME = "v1"


@sensitive_variables()
def _sign(secret: str, msg_id: str, timestamp: int, payload: str) -> str:
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), payload)


@sensitive_variables()
def sign_headers(
    *, msg_id: str, body: bytes, secrets: list[str], timestamp: int | None = None
) -> dict[str, str]:
    """Headers for an outbound delivery, one signature per secret (current first, then any still
    in their grace period) so receivers that know either secret accept it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    payload = body.decode()
    return {
        HEADER_WEBHOOK_ID: msg_id,
        HEADER_WEBHOOK_TIMESTAMP: str(timestamp),
        HEADER_WEBHOOK_SIGNATURE: " ".join(_sign(s, msg_id, timestamp, payload) for s in secrets),
    }


@sensitive_variables()
def _matches(secret: str, msg_id: str, timestamp: int, payload: str, signatures: list[str]) -> bool:
    try:
        expected = _sign(secret, msg_id, timestamp, payload).encode()
    except (EmptyWebhookSecretError, binascii.Error, ValueError):
        return False  # an empty or undecodable secret matches nothing
    return any([hmac.compare_digest(expected, signature.encode()) for signature in signatures])


@register
class StandardWebhooksProvider(BaseProvider):
    key = "standard_webhooks"
    name = "Standard Webhooks"
    description = "Any sender following the Standard Webhooks spec (inbound); outbound signing."
    credential_fields = {
        CredentialPurpose.WEBHOOK_SIGNING: [
            CredentialField("secret", help_text="Base64 signing secret, usually whsec_…"),
        ],
    }
    verifies_webhooks = True
    webhook_tolerance_seconds = 5 * 60
    inbound_headers = (*BaseProvider.inbound_headers, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_TIMESTAMP)
    # The webhooks app adds its ``send`` operation at start-up (webhooks/outbound.py).

    @sensitive_variables("secrets", "secret")
    def verify(self, body, headers, secrets, url, *, now=None, tolerance=None) -> int:
        lowered = headers_lower(headers)
        msg_id = lowered.get(HEADER_WEBHOOK_ID)
        raw_timestamp = lowered.get(HEADER_WEBHOOK_TIMESTAMP)
        signature_header = lowered.get(HEADER_WEBHOOK_SIGNATURE)
        if not (msg_id and raw_timestamp and signature_header):
            raise SignatureInvalid("Missing webhook-id, webhook-timestamp or webhook-signature.")
        timestamp = unix_seconds(raw_timestamp)
        if timestamp is None:
            raise SignatureInvalid("webhook-timestamp is not a Unix time in seconds.")
        now = time.time() if now is None else now
        tolerance = self.webhook_tolerance_seconds if tolerance is None else tolerance
        if abs(now - timestamp) > tolerance:
            raise SignatureInvalid(
                f"webhook-timestamp is outside the tolerance of {tolerance:g} s."
            )
        try:
            payload = body.decode()
        except UnicodeDecodeError:
            raise SignatureInvalid("Body is not UTF-8.") from None
        signatures = [s for s in signature_header.split(" ") if s.startswith(f"{SCHEME},")]
        if not signatures:
            raise SignatureInvalid("No v1 signature in webhook-signature.")
        return check_secrets(
            secrets, lambda secret: _matches(secret, msg_id, timestamp, payload, signatures)
        )

    def event_id(self, body, headers) -> str:
        msg_id = headers_lower(headers).get(HEADER_WEBHOOK_ID)
        if not msg_id:
            raise PayloadInvalid("Missing webhook-id header.")
        return msg_id

    def normalise(self, body, headers) -> NormalisedEvent | None:
        payload = parse_json_body(body)
        if not isinstance(payload.get("type"), str) or not payload["type"]:
            raise PayloadInvalid("Standard Webhooks payload has no 'type'.")
        return NormalisedEvent(
            type=payload["type"], occurred_at=payload.get("timestamp"), data=payload.get("data")
        )
