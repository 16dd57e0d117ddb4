"""Where secrets may go and what a delivery may load (DESIGN §10), as regressions of the attacks
issue 14 reproduced: a shared credential sent to a customer's base_url, and the internal
``standard_webhooks.send`` reaching another customer's events and subscriptions."""

import json

import pytest
import responses
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from credentials.services import credential_create
from customers.services import api_key_create
from integrations.deliveries import services
from integrations.models import Delivery, DeliveryAttempt
from integrations.services import integration_check, integration_create
from webhooks.models import InboundEvent, WebhookEndpoint
from webhooks.services import subscription_create

pytestmark = pytest.mark.django_db

GA4_SECRET = "ga4-global-api-secret"
GA4_FIELDS = {"measurement_id": "G-TEST123456", "api_secret": GA4_SECRET}
TRACK = {"client_id": "555.123", "events": [{"name": "login", "params": {}}]}
PROXY = "https://ga4-proxy.example.com"


@pytest.fixture
def global_ga4(acme):
    return credential_create(provider="ga4", purpose="api", fields=GA4_FIELDS)


def _send(customer="acme", action="ga4.track", input=TRACK):
    delivery, _ = services.delivery_create(
        api_key=None, customer=customer, action=action, input=input
    )
    services.deliveries_attempt(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    return delivery


@responses.activate
def test_a_shared_credential_is_not_sent_to_a_customers_base_url(acme, global_ga4):
    integration_create(customer=acme, provider_key="ga4", config={"base_url": PROXY})
    delivery = _send()
    assert delivery.status == Delivery.Status.DEAD
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.error_class == "credential_not_allowed"
    assert "ga4-proxy.example.com" in delivery.last_error
    assert len(responses.calls) == 0  # nothing left for the proxy: not a byte of the secret
    assert GA4_SECRET not in json.dumps([delivery.last_error, attempt.request_url])


@responses.activate
def test_a_shared_credential_goes_to_the_providers_own_host(acme, global_ga4):
    responses.post("https://region1.google-analytics.com/mp/collect", status=204)
    assert _send().status == Delivery.Status.SUCCEEDED
    assert GA4_SECRET in responses.calls[0].request.url


@responses.activate
def test_a_trusted_integration_may_receive_a_shared_credential(acme, global_ga4):
    responses.post(f"{PROXY}/mp/collect", status=204)
    integration_create(customer=acme, provider_key="ga4", config={"base_url": PROXY}, trusted=True)
    assert _send().status == Delivery.Status.SUCCEEDED
    assert GA4_SECRET in responses.calls[0].request.url


@responses.activate
def test_a_customers_own_credential_may_go_to_its_base_url(acme, global_ga4):
    responses.post(f"{PROXY}/mp/collect", status=204)
    credential_create(
        provider="ga4",
        purpose="api",
        customer=acme,
        fields={"measurement_id": "G-ACME", "api_secret": "acme-own"},
    )
    integration_create(customer=acme, provider_key="ga4", config={"base_url": PROXY})
    assert _send().status == Delivery.Status.SUCCEEDED
    assert "api_secret=acme-own" in responses.calls[0].request.url


@responses.activate
def test_the_integration_check_keeps_shared_credentials_home_too(acme):
    credential_create(
        provider="trello", purpose="api", fields={"api_key": "k" * 32, "token": "t" * 64}
    )
    integration = integration_create(
        customer=acme,
        provider_key="trello",
        config={"base_url": "https://trello-proxy.example.com"},
    )
    outcome = integration_check(integration=integration)
    assert (outcome.outcome, outcome.error_class) == ("terminal", "credential_not_allowed")
    assert len(responses.calls) == 0


@pytest.fixture
def globex_event(globex):
    signing = credential_create(
        provider="standard_webhooks",
        purpose="webhook_signing",
        customer=globex,
        fields={"secret": "whsec_" + "A" * 32},
    )
    endpoint = WebhookEndpoint.objects.create(
        customer=globex, provider="standard_webhooks", credential=signing
    )
    return InboundEvent.objects.create(
        endpoint=endpoint,
        provider="standard_webhooks",
        external_id="msg_1",
        body=b"{}",
        envelope={"id": "evt", "type": "globex.secret", "data": {"revenue": 1}},
        attempt_limit=10,
        next_attempt_at=timezone.now(),
    )


def test_the_internal_send_is_refused_at_the_api(acme, globex_event):
    _, raw = api_key_create(name="acme-app", customers=[acme])
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {
        "customer": "acme",
        "action": "standard_webhooks.send",
        "input": {"subscription": 1, "event": globex_event.pk},
    }
    for path in ("/api/v1/deliveries/", "/api/v1/actions/validate/"):
        response = client.post(path, body, format="json")
        assert response.status_code == 400
        assert "action" in response.json()["errors"]
    assert not Delivery.objects.exists()
    with pytest.raises(ValidationError, match="run by Switchyard itself"):
        services.delivery_create(
            api_key=None, customer="acme", **{k: body[k] for k in ("action", "input")}
        )


@responses.activate
def test_a_send_never_loads_another_customers_event_or_subscription(acme, globex, globex_event):
    """Even a delivery row forged past the API (internal=True) for acme cannot send globex's
    event, nor sign anything with globex's subscription."""
    acme_hook = subscription_create(
        url="https://acme-hooks.example.com/in", event_types=["*"], customer=acme
    )[0]
    globex_hook = subscription_create(
        url="https://globex-hooks.example.com/in", event_types=["*"], customer=globex
    )[0]
    for subscription in (acme_hook, globex_hook):
        delivery, _ = services.delivery_create(
            api_key=None,
            customer="acme",
            action="standard_webhooks.send",
            input={"subscription": subscription.pk, "event": globex_event.pk},
            internal=True,
        )
        services.deliveries_attempt(delivery_ids=[delivery.pk])
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.DEAD
        assert "another customer" in delivery.last_error
    assert len(responses.calls) == 0


def test_the_catalogue_does_not_offer_internal_operations(api):
    providers = {p["key"]: p for p in api.get("/api/v1/providers/").json()["providers"]}
    assert providers["standard_webhooks"]["operations"] == []
    assert providers["trello"]["operations"]
