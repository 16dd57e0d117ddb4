import base64
import hashlib
import hmac
import json

import pytest
import responses

from integrations.providers.types import PayloadInvalid, SignatureInvalid
from integrations.registry import get_provider
from tests.integrations.providers.helpers import fixture_bytes

CREDS = {"access_token": "shpat_0123456789abcdef"}
CONFIG = {"shop": "acme-store"}
URL = "https://acme-store.myshopify.com/admin/api/2025-01/orders/450789469.json"
TAGS = {"order_id": 450789469, "tags": ["vip", "gift"]}


@responses.activate
def test_set_order_tags_puts_order_with_access_token(execute):
    responses.put(
        URL,
        json={"order": {"id": 450789469, "tags": "vip, gift"}},
        headers={"X-Shopify-Shop-Api-Call-Limit": "1/40"},
    )
    outcome = execute("shopify.set_order_tags", TAGS, credentials=CREDS, config=CONFIG)
    assert outcome.outcome == "success"
    assert outcome.result == {"order_id": 450789469, "tags": ["vip", "gift"]}
    sent = responses.calls[0].request
    assert sent.headers["X-Shopify-Access-Token"] == "shpat_0123456789abcdef"
    assert json.loads(sent.body) == {"order": {"id": 450789469, "tags": "vip, gift"}}
    assert outcome.request["headers"]["X-Shopify-Access-Token"] == "****"


@responses.activate
def test_429_uses_retry_after_and_reports_call_limit(execute):
    responses.put(
        URL,
        status=429,
        json={
            "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."  # noqa: E501
        },
        headers={"Retry-After": "0.05", "X-Shopify-Shop-Api-Call-Limit": "40/40"},
    )
    outcome = execute("shopify.set_order_tags", TAGS, credentials=CREDS, config=CONFIG)
    assert (outcome.outcome, outcome.retry_after) == ("rate_limited", 0.05)
    assert "Exceeded 2 calls per second" in outcome.error and "40/40" in outcome.error


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (
            401,
            {
                "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: E501
            },
            "auth_failed",
        ),
        (403, {"errors": "Forbidden"}, "terminal"),
        (422, {"errors": {"title": ["can't be blank"]}}, "terminal"),
        (423, {"errors": "Locked"}, "terminal"),
        (503, {"errors": "Unavailable"}, "retryable"),
    ],
)
@responses.activate
def test_error_codes(execute, status, body, outcome):
    responses.put(URL, status=status, json=body)
    assert (
        execute("shopify.set_order_tags", TAGS, credentials=CREDS, config=CONFIG).outcome == outcome
    )


def test_shopify_needs_an_integration(acme):
    from rest_framework.exceptions import ValidationError

    from integrations.deliveries.prepare import action_prepare

    with pytest.raises(ValidationError) as caught:
        action_prepare(customer=acme, action="shopify.set_order_tags", input=TAGS)
    assert "no active shopify integration" in str(caught.value.detail["action"][0])


# -- inbound ------------------------------------------------------------------------------------

SECRET = "shopify-client-secret"


def _sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _headers(body: bytes, secret: str = SECRET) -> dict:
    return {
        "X-Shopify-Hmac-Sha256": _sign(body, secret),
        "X-Shopify-Topic": "products/update",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2025-04-22T19:30:00.000000Z",
    }


def test_sdk_worked_example():
    headers = {"X-Shopify-Hmac-Sha256": "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="}
    assert (
        get_provider("shopify").verify(b'{"foo": "bar"}', headers, [(1, "test_secret_key")], "")
        == 1
    )


def test_verify_fixture_and_rotation_grace():
    body = fixture_bytes("shopify", "products_update__basic")
    shopify = get_provider("shopify")
    assert shopify.verify(body, _headers(body), [(3, SECRET), (2, "old")], "") == 3
    assert shopify.verify(body, _headers(body, "old"), [(3, SECRET), (2, "old")], "") == 2


@pytest.mark.parametrize("case", ["tampered", "wrong-secret", "missing-header"])
def test_verify_rejects(case):
    body = fixture_bytes("shopify", "products_update__basic")
    headers = _headers(body, "wrong" if case == "wrong-secret" else SECRET)
    if case == "tampered":
        body = body.replace(b"29.99", b"0.99")
    if case == "missing-header":
        del headers["X-Shopify-Hmac-Sha256"]
    with pytest.raises(SignatureInvalid):
        get_provider("shopify").verify(body, headers, [(1, SECRET)], "")


def test_event_id_prefers_event_id_and_falls_back_to_webhook_id():
    body = fixture_bytes("shopify", "products_update__basic")
    headers = _headers(body)
    shopify = get_provider("shopify")
    assert shopify.event_id(body, headers) == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    del headers["X-Shopify-Event-Id"]
    assert shopify.event_id(body, headers) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    with pytest.raises(PayloadInvalid):
        shopify.event_id(body, {})


def test_normalise_uses_topic():
    body = fixture_bytes("shopify", "products_update__basic")
    event = get_provider("shopify").normalise(body, _headers(body))
    assert event.type == "shopify.products.update"
    assert event.occurred_at == "2025-04-22T19:30:00.000000Z"
    assert event.data["id"] == 9554194432293
    with pytest.raises(PayloadInvalid):
        get_provider("shopify").normalise(body, {})
