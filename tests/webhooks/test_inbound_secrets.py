"""Inbound secrets: headers are stored by each provider's allowlist (never a credential or a
signature), and with DEBUG on, an exception in the receiver after the signing secrets are loaded
gives an error page that shows none of them."""

import base64
import json
import uuid

import pytest

from tests.integrations.providers.helpers import fixture_bytes
from tests.test_canary_masking import _Boom, _boom, _debug_client, _leaks
from tests.webhooks.conftest import FIXTURES, SERVER, as_meta, signed_headers
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db


# --- inbound headers --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(FIXTURES))
def test_inbound_headers_are_stored_by_allowlist(provider, make_endpoint, post_webhook):
    endpoint = make_endpoint(provider)
    body = fixture_bytes(provider, FIXTURES[provider][0])
    headers = {
        **signed_headers(provider, body, SERVER + endpoint.path),
        "X-Auth-Token": "inbound-credential",
        "X-Api-Secret": "inbound-credential",
        "Authorization": "Bearer inbound-credential",
        "Cookie": "session=inbound-credential",
        "User-Agent": "Sender/1.0",
        "X-Request-Id": "req-1",
    }
    response = post_webhook(endpoint, body, headers)
    assert response.status_code == 202, response.content
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    stored = {name.lower(): value for name, value in event.headers.items()}
    assert "inbound-credential" not in json.dumps(event.headers)
    assert stored["user-agent"] == "Sender/1.0"
    assert stored["x-request-id"] == "req-1"
    assert stored["content-type"] == "application/json"
    signature_headers = {"x-trello-webhook", "x-shopify-hmac-sha256", "stripe-signature"}
    assert not set(stored) & (signature_headers | {"webhook-signature"})
    if provider == "shopify":
        assert stored["x-shopify-topic"] == "products/update"
        assert "x-shopify-event-id" in stored and "x-shopify-triggered-at" in stored
    if provider == "standard_webhooks":
        assert {"webhook-id", "webhook-timestamp"} <= set(stored)


# (provider, what to break inside verification, after the secrets are loaded)
BREAKS = [
    ("trello", "integrations.providers.trello.b64_hmac", _boom),
    ("shopify", "integrations.providers.shopify.b64_hmac", _boom),
    ("stripe", "integrations.providers.stripe._signature", _boom),
    ("standard_webhooks", "integrations.providers.standard_webhooks.Webhook", _Boom),
    ("trello", "webhooks.selectors.ReceivingEndpoint", _Boom),
    ("shopify", "webhooks.services.receiving.parse_json_body", _boom),
]


@pytest.mark.parametrize(("provider", "target", "replacement"), BREAKS)
def test_receiver_debug_page_shows_no_signing_secret(
    provider, target, replacement, settings, monkeypatch, make_endpoint
):
    from webhooks import selectors

    selectors._receiving.clear()
    secret = f"whsec_{base64.b64encode(uuid.uuid4().bytes).decode()}"
    endpoint = make_endpoint(provider, secret=secret)
    body = fixture_bytes(provider, FIXTURES[provider][0])
    headers = signed_headers(provider, body, SERVER + endpoint.path, secret=secret)
    monkeypatch.setattr(target, replacement)
    client = _debug_client(settings)
    response = client.post(
        endpoint.path, data=body, content_type="application/json", **as_meta(headers)
    )
    assert response.status_code == 500
    page = response.content
    assert b"canary: failure after the secrets were loaded" in page
    assert b"inbound_webhook_receive" in page  # the frames are there, their secrets are not
    assert _leaks(secret, [("debug page", page)]) == []
