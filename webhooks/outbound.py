"""``standard_webhooks.send``: deliver one stored Switchyard event to one subscription through the
delivery engine. The webhooks app owns it (subscriptions, their secrets, the 410 that disables
one) and adds it to the Standard Webhooks provider at start-up, so the provider imports no app.

``webhook-id`` is the delivery's stable id: retries of one delivery carry the same id and
receivers can de-duplicate on it."""

import json

from rest_framework import serializers

from credentials.services import credential_version_mark_used
from integrations import egress
from integrations.providers.standard_webhooks import sign_headers
from integrations.providers.types import (
    CallContext,
    Interpretation,
    NotConfigured,
    Operation,
    Outcome,
    ProviderRequest,
    ProviderResponse,
)
from webhooks.selectors import outbound_message
from webhooks.services import subscription_disable

__all__ = ("SEND",)

HEADER_CONTENT_TYPE = "Content-Type"


class SendInput(serializers.Serializer):
    subscription = serializers.IntegerField(min_value=1, help_text="Subscription id.")
    event = serializers.IntegerField(min_value=1, help_text="Inbound event id.")


def _send_request(ctx: CallContext, data: dict) -> ProviderRequest:
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


def _gone(response: ProviderResponse, data: dict) -> Interpretation | None:
    """Standard Webhooks: 410 Gone means the receiver wants no more deliveries."""
    if response.status != 410:
        return None
    subscription_disable(subscription_id=data["subscription"], reason="Receiver answered 410 Gone.")
    return Interpretation(
        Outcome.TERMINAL,
        error="HTTP 410: the receiver is gone; the subscription was disabled.",
        error_class="gone",
    )


SEND = Operation(
    "send",
    "Sign (Standard Webhooks) and POST a Switchyard event to a subscription's URL.",
    SendInput,
    _send_request,
    _send_result,
    internal=True,
    interpret_failure=_gone,
)
