"""Issue 17 at the receiver: a header or URL no provider would send is a clean 4xx (a signature
rejection, or 404), never a 500, also with DEBUG off."""

import hashlib
import hmac
import time
import uuid

import pytest

from integrations.providers.wire import unix_seconds
from tests.integrations.providers.helpers import fixture_bytes
from tests.webhooks.conftest import FIXTURES, SECRETS, SERVER, signed_headers
from webhooks.models import InboundEvent, WebhookEndpoint

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
# Timestamps str.isdigit() or int() take, that are no Unix time in ASCII digits.
NOT_TIMESTAMPS = [
    "\u00b2",  # SUPERSCRIPT TWO: isdigit() is true, int() raises
    "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic 1700000000
    "9" * 5000,  # int() raises beyond 4300 digits
    "9" * 400,  # int() takes it; a float cannot hold it
    "+1700000000",
    " 1700000000",
    "1_700_000_000",
    "1700000000\n",
    "",
]


def test_unix_seconds_takes_ascii_digits_only():
    assert unix_seconds("1700000000") == 1_700_000_000
    for value in [*NOT_TIMESTAMPS, None]:
        assert unix_seconds(value) is None, repr(value)


def _refused(response):
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == PROBLEM
    assert response.json()["type"].endswith("/signature-invalid")
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("timestamp", NOT_TIMESTAMPS)
def test_a_standard_webhooks_timestamp_of_other_digits_is_a_signature_rejection(
    settings, make_endpoint, post_webhook, timestamp
):
    settings.DEBUG = False
    endpoint = make_endpoint("standard_webhooks")
    body = fixture_bytes("standard_webhooks", FIXTURES["standard_webhooks"][0])
    headers = {**signed_headers("standard_webhooks", body, ""), "webhook-timestamp": timestamp}
    _refused(post_webhook(endpoint, body, headers))
    assert WebhookEndpoint.objects.get().rejected_signatures == 1


@pytest.mark.parametrize("timestamp", NOT_TIMESTAMPS)
def test_a_stripe_timestamp_of_other_digits_is_a_signature_rejection(
    settings, make_endpoint, post_webhook, timestamp
):
    """Signed over the timestamp as sent: int() would have read Arabic-Indic digits as ASCII
    ones and checked the signature against digits the sender never signed."""
    settings.DEBUG = False
    endpoint = make_endpoint("stripe")
    body = fixture_bytes("stripe", FIXTURES["stripe"][0])
    signed = f"{timestamp}.".encode() + body
    signature = hmac.new(SECRETS["stripe"].encode(), signed, hashlib.sha256).hexdigest()
    _refused(post_webhook(endpoint, body, {"Stripe-Signature": f"t={timestamp},v1={signature}"}))


def test_ascii_timestamps_are_still_accepted(make_endpoint, post_webhook):
    for provider in ("standard_webhooks", "stripe"):
        endpoint = make_endpoint(provider)
        headers = signed_headers(
            provider,
            fixture_bytes(provider, FIXTURES[provider][0]),
            SERVER + endpoint.path,
            timestamp=int(time.time()),
        )
        response = post_webhook(endpoint, None, headers)
        assert response.status_code == 202, response.content


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("provider", ["nope", "NOPE", "trello.", "%00", "a" * 500])
def test_an_unknown_provider_is_a_404(settings, client, debug, provider):
    """A problem document with DEBUG off; with it on, a path no route takes (the NUL) gets
    Django's debug page, as any other does."""
    settings.DEBUG = debug
    response = client.post(
        f"/webhooks/{provider}/{uuid.uuid4()}/", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 404, response.content
    if not debug or provider != "%00":
        assert response["Content-Type"] == PROBLEM
