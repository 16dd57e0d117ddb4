"""Send test event (the admin's button on a subscription): one signed POST of a synthetic
``switchyard.test`` event, made now through egress and held to the connection-check deadline,
so the operator sees the receiver's answer on the page. It is not a delivery: nothing is stored
or retried, and the receiver can tell it apart by its type."""

import json
import time
import uuid
from dataclasses import dataclass

import requests
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials.services import credential_verification_secrets
from integrations import egress
from integrations.providers.standard_webhooks import StandardWebhooksProvider, sign_headers
from webhooks.models import Subscription

__all__ = ("TEST_EVENT_TYPE", "TestEventResult", "subscription_test_event_send")

TEST_EVENT_TYPE = "switchyard.test"


@dataclass(frozen=True)
class TestEventResult:
    ok: bool
    status: int | None
    duration_ms: int
    error: str = ""

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status else "no answer"
        verdict = "accepted" if self.ok else "refused"
        detail = f": {self.error}" if self.error else ""
        return f"Test event {verdict} ({status}, {self.duration_ms} ms){detail}"


def _envelope(subscription: Subscription) -> dict:
    return {
        "id": f"evt_test_{uuid.uuid4().hex}",
        "type": TEST_EVENT_TYPE,
        "occurred_at": timezone.now().isoformat(),
        "customer": subscription.customer.slug if subscription.customer_id else None,
        "provider": "switchyard",
        "data": {"subscription": subscription.pk, "message": "Test event from Switchyard."},
    }


@sensitive_variables()
def _signed_request(subscription: Subscription, body: bytes) -> requests.PreparedRequest:
    secrets = [
        fields["secret"]
        for _, fields in credential_verification_secrets(credential=subscription.signing_credential)
    ]
    if not secrets:
        raise ValueError("The subscription has no unexpired signing secret.")
    headers = sign_headers(msg_id=f"msg_test_{uuid.uuid4().hex}", body=body, secrets=secrets)
    headers["Content-Type"] = "application/json"
    return requests.Request("POST", subscription.url, data=body, headers=headers).prepare()


def subscription_test_event_send(*, subscription: Subscription) -> TestEventResult:
    """POST a signed test event to the subscription's URL; ``ValueError`` when it cannot be
    sent at all (no secret, or a destination egress refuses)."""
    if subscription.signing_credential_id is None:
        raise ValueError("The subscription has no signing secret.")
    try:
        egress.destination_check(subscription.url, allow_private=subscription.allow_private)
    except egress.EgressRefused as exc:
        raise ValueError(f"Destination refused: {exc.public_message}") from exc
    body = json.dumps(_envelope(subscription), separators=(",", ":")).encode()
    prepared = _signed_request(subscription, body)
    session = egress.session_for(
        StandardWebhooksProvider.key, allow_private=subscription.allow_private
    )
    deadline = float(settings.SWITCHYARD_CHECK_DEADLINE_SECONDS)
    started = time.monotonic()
    try:
        response = session.send(prepared, deadline=deadline, timeout=(deadline, deadline))
    except requests.RequestException as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return TestEventResult(False, None, elapsed, f"{type(exc).__name__}: {exc}"[:300])
    elapsed = int((time.monotonic() - started) * 1000)
    ok = 200 <= response.status_code < 300
    return TestEventResult(ok, response.status_code, elapsed)
