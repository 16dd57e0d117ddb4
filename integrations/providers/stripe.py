"""Stripe, inbound only (reference/providers.md §6): ``Stripe-Signature: t=…,v1=…`` is HMAC-SHA256
(hex) of ``"{t}.{body}"``; only ``v1`` counts, several may be present, 300 s tolerance."""

import hashlib
import hmac
import time
from datetime import UTC, datetime

from django.views.decorators.debug import sensitive_variables

from integrations.constants import HEADER_STRIPE_SIGNATURE
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

__all__ = ("StripeProvider", "signature_header")

SCHEME = "v1"
EVENT_PREFIX = "stripe."


@sensitive_variables()
def _signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


@sensitive_variables()
def signature_header(*, body: bytes, secret: str, timestamp: int) -> str:
    """A ``Stripe-Signature`` value as Stripe builds it (for tests and the fake server)."""
    return f"t={timestamp},{SCHEME}={_signature(secret, timestamp, body)}"


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = unix_seconds(value)
        elif name == SCHEME:
            # Other schemes (v0 in test mode) are ignored to prevent downgrade attacks.
            signatures.append(value)
    if timestamp is None:
        raise SignatureInvalid("Unable to extract timestamp and signatures from header.")
    if not signatures:
        raise SignatureInvalid("No signatures found with expected scheme v1.")
    return timestamp, signatures


@register
class StripeProvider(BaseProvider):
    key = "stripe"
    name = "Stripe"
    description = "Stripe webhooks (inbound only)."
    credential_fields = {
        CredentialPurpose.WEBHOOK_SIGNING: [
            CredentialField("secret", help_text="The endpoint's signing secret (whsec_…)."),
        ],
    }
    verifies_webhooks = True
    webhook_tolerance_seconds = 300

    @sensitive_variables("secrets", "secret")
    def verify(self, body, headers, secrets, url, *, now=None, tolerance=None) -> int:
        header = headers_lower(headers).get(HEADER_STRIPE_SIGNATURE.lower())
        if not header:
            raise SignatureInvalid(f"Missing {HEADER_STRIPE_SIGNATURE} header.")
        timestamp, signatures = _parse_header(header)
        now = time.time() if now is None else now
        tolerance = self.webhook_tolerance_seconds if tolerance is None else tolerance
        if timestamp < now - tolerance:
            raise SignatureInvalid(
                f"Timestamp {timestamp} is outside the tolerance of {tolerance:g} s."
            )

        @sensitive_variables()
        def matches(secret: str) -> bool:
            expected = _signature(secret, timestamp, body).encode()
            return any([hmac.compare_digest(expected, sig.encode()) for sig in signatures])

        return check_secrets(secrets, matches)

    def event_id(self, body, headers) -> str:
        event_id = parse_json_body(body).get("id")
        if not event_id:
            raise PayloadInvalid("Stripe event has no id.")
        return str(event_id)

    def normalise(self, body, headers) -> NormalisedEvent | None:
        event = parse_json_body(body)
        event_type = event.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise PayloadInvalid("Stripe event has no type.")
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        return NormalisedEvent(
            type=EVENT_PREFIX + event_type,
            occurred_at=_occurred_at(event.get("created")),
            data={"id": event.get("id"), "object": data.get("object")},
        )


def _occurred_at(created) -> str | None:
    """``created`` (Unix seconds) in ISO 8601, or None where it is no time: absent, not a
    number, or outside what a datetime holds (NaN, 1e300; the JSON parser accepts both)."""
    if not isinstance(created, int | float) or isinstance(created, bool):
        return None
    try:
        return datetime.fromtimestamp(created, tz=UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None
