import base64
import hashlib
import hmac
import time
from http.server import BaseHTTPRequestHandler

import pytest

from credentials.services import credential_create
from integrations.providers.standard_webhooks import sign_headers
from integrations.providers.stripe import signature_header
from tests.integrations.providers.helpers import fixture_bytes
from tests.local_http import LocalHttpServer
from webhooks.services import endpoint_create, inbound_events_relay_due

SECRETS = {
    "trello": "trello-app-secret",
    "shopify": "shopify-client-secret",
    "stripe": "whsec_test_secret",
    "standard_webhooks": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
# (fixture name, Switchyard event type it normalises to)
FIXTURES = {
    "trello": ("updateCard__moved", "trello.card.moved"),
    "shopify": ("products_update__basic", "shopify.products.update"),
    "stripe": ("invoice_paid__basic", "stripe.invoice.paid"),
    "standard_webhooks": ("invoice_paid__basic", "invoice.paid"),
}
SERVER = "http://testserver"


def signed_headers(
    provider: str, body: bytes, url: str, *, secret=None, timestamp=None, msg_id=None
):
    """Headers as each provider sends them, signed over the exact bytes (and URL for Trello)."""
    secret = SECRETS[provider] if secret is None else secret
    timestamp = int(time.time()) if timestamp is None else timestamp
    if provider == "trello":
        digest = hmac.new(secret.encode(), body + url.encode(), hashlib.sha1).digest()
        return {"X-Trello-Webhook": base64.b64encode(digest).decode()}
    if provider == "shopify":
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        return {
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Topic": "products/update",
            "X-Shopify-Event-Id": msg_id or "98880550-7158-44d4-b7cd-2c97c8a091b5",
            "X-Shopify-Triggered-At": "2025-04-22T19:30:00.000Z",
        }
    if provider == "stripe":
        return {"Stripe-Signature": signature_header(body=body, secret=secret, timestamp=timestamp)}
    return sign_headers(
        msg_id=msg_id or "msg_p5jXN8AQM9LWM0D4loKWxJek",
        body=body,
        secrets=[secret],
        timestamp=timestamp,
    )


def as_meta(headers: dict) -> dict:
    """Django test client keyword arguments for request headers."""
    return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}


@pytest.fixture
def make_endpoint(acme):
    def make(provider: str, *, customer=None, secret=None, tolerance_seconds=None):
        customer = customer or acme
        credential = credential_create(
            provider=provider,
            purpose="webhook_signing",
            customer=customer,
            fields={"secret": secret or SECRETS[provider]},
        )
        return endpoint_create(
            customer=customer,
            provider=provider,
            credential=credential,
            tolerance_seconds=tolerance_seconds,
        )

    return make


@pytest.fixture
def post_webhook(client, django_capture_on_commit_callbacks):
    """POST a fixture (or given bytes) to an endpoint, signed unless headers are given; an
    accepted event then goes through a dispatcher relay pass, whose task runs inline (django-q2
    sync mode)."""

    def post(endpoint, body: bytes | None = None, headers=None, **sign):
        provider = endpoint.provider
        body = fixture_bytes(provider, FIXTURES[provider][0]) if body is None else body
        url = SERVER + endpoint.path
        headers = signed_headers(provider, body, url, **sign) if headers is None else headers
        response = client.post(
            endpoint.path, data=body, content_type="application/json", **as_meta(headers)
        )
        if response.status_code == 202:
            with django_capture_on_commit_callbacks(execute=True):
                inbound_events_relay_due()
        return response

    return post


class Subscriber(LocalHttpServer):
    """An internal app receiving events: records each request; answers ``status`` (200 unless
    told otherwise)."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                subscriber.requests.append((dict(self.headers), body))
                self.send_response(subscriber.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(Handler, "/hooks")


@pytest.fixture
def subscriber():
    subscriber = Subscriber()
    yield subscriber
    subscriber.close()
