"""Standard Webhooks (https://www.standardwebhooks.com, reference/webhook-platforms.md §4):
``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64>`` (several, space
separated, during rotation) over ``"{id}.{timestamp}.{body}"``, 5 minutes tolerance both ways.

Signatures are computed by the maintained ``standardwebhooks`` library; the timestamp check is ours
so that "now" can be injected and every secret version can be tried.

Outbound, ``standard_webhooks.send`` delivers one stored Switchyard event to one subscription
(webhooks app) through the delivery engine: ``webhook-id`` is the delivery's stable id, so
retries of one delivery carry the same id and receivers can de-duplicate on it."""

import binascii
import hmac
import json
import time
from datetime import UTC, datetime

from django.views.decorators.debug import sensitive_variables
from rest_framework import serializers
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from integrations import egress
from integrations.constants import (
    HEADER_WEBHOOK_ID,
    HEADER_WEBHOOK_SIGNATURE,
    HEADER_WEBHOOK_TIMESTAMP,
)
from integrations.providers.base import (
    BaseProvider,
    CallContext,
    CredentialField,
    CredentialPurpose,
    Interpretation,
    NormalisedEvent,
    NotConfigured,
    Operation,
    Outcome,
    PayloadInvalid,
    ProviderRequest,
    ProviderResponse,
    SignatureInvalid,
    check_secrets,
    headers_lower,
    parse_json_body,
    unix_seconds,
)
from integrations.registry import register

__all__ = ("StandardWebhooksProvider", "sign_headers")

SCHEME = "v1"
HEADER_CONTENT_TYPE = "Content-Type"


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


class SendInput(serializers.Serializer):
    subscription = serializers.IntegerField(min_value=1, help_text="Subscription id.")
    event = serializers.IntegerField(min_value=1, help_text="Inbound event id.")


def _send_request(ctx: CallContext, data: dict) -> ProviderRequest:
    # The webhooks and credentials apps build on integrations, so they are imported only when
    # a send is built.
    from credentials.services import credential_version_mark_used
    from webhooks.selectors import outbound_message

    message = outbound_message(
        subscription_id=data["subscription"], event_id=data["event"], customer_id=ctx.customer_id
    )
    if message is None:
        raise NotConfigured(
            "The subscription is disabled or gone, or the event has no envelope, or either "
            "belongs to another customer than the delivery's."
        )
    if not message.secrets:
        raise NotConfigured("The subscription has no unexpired signing secret.")
    if not ctx.idempotency_key:
        raise NotConfigured("A send needs the delivery's stable id for webhook-id.")
    # Checked again at send time (the name may resolve elsewhere than when it was saved); an
    # EgressRefused is a terminal egress_refused outcome. The connection checks once more.
    egress.destination_check(message.url, allow_private=message.allow_private)
    body = json.dumps(message.envelope, separators=(",", ":")).encode()
    headers = sign_headers(msg_id=ctx.idempotency_key, body=body, secrets=message.secrets)
    headers[HEADER_CONTENT_TYPE] = "application/json"
    # Each version that signs says so (at most one write a minute per version), so an operator
    # sees when a previous secret stopped signing.
    for version in message.versions:
        credential_version_mark_used(credential=message.signing_credential, version=version)
    return ProviderRequest(
        "POST",
        "",
        url=message.url,
        content=body,
        headers=headers,
        allow_private=message.allow_private,
    )


def _send_result(response: ProviderResponse, data: dict) -> dict:
    return {"status": response.status}


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
    operations = {
        "send": Operation(
            "send",
            "Sign (Standard Webhooks) and POST a Switchyard event to a subscription's URL.",
            SendInput,
            _send_request,
            _send_result,
            internal=True,
        ),
    }

    def interpret(self, operation, response, input, config) -> Interpretation:
        if operation.name == "send" and response.status == 410:
            # Standard Webhooks: 410 Gone means the receiver wants no more deliveries.
            from webhooks.services import subscription_disable

            subscription_disable(
                subscription_id=input["subscription"], reason="Receiver answered 410 Gone."
            )
            return Interpretation(
                Outcome.TERMINAL,
                error="HTTP 410: the receiver is gone; the subscription was disabled.",
                error_class="gone",
            )
        return super().interpret(operation, response, input, config)

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
