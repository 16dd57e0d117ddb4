"""URLs that urllib.parse and urllib3 read differently (an attack review found these): for
``https://attacker.example\\@api.miro.com`` urlsplit says api.miro.com, while requests and botocore
connect to attacker.example. Such URLs are refused wherever a URL is accepted, and a shared
secret is never sent to one that was stored before."""

import re

import pytest
import responses
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from credentials.services import credential_create, credential_resolve
from customers.services import api_key_create
from integrations.deliveries import services
from integrations.egress_url import UrlRefused, url_host, url_split
from integrations.models import Delivery, Integration
from integrations.oauth import TokenRefreshFailed, oauth_token_fresh
from webhooks.sources.config import source_config_clean

pytestmark = pytest.mark.django_db

GA4_SECRET = "ga4-global-api-secret"
TRACK = {"client_id": "555.123", "events": [{"name": "login", "params": {}}]}
AMBIGUOUS = [
    "https://attacker.example\\@region1.google-analytics.com",
    "https://attacker.example\\\\@api.miro.com/v2",
    "https://user:secret@api.miro.com",
    "https://attacker.example@api.miro.com",
]


@pytest.mark.parametrize("url", AMBIGUOUS)
def test_ambiguous_or_credential_carrying_urls_are_refused(url):
    with pytest.raises(UrlRefused):
        url_split(url)
    assert url_host(url) is None


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://api.miro.com/v2/boards", "api.miro.com"),
        ("http://127.0.0.1:9100/http", "127.0.0.1"),
        ("https://[2001:db8::1]:8443/x", "2001:db8::1"),
        ("https://API.Miro.com/path\\with\\backslashes", "api.miro.com"),
    ],
)
def test_plain_urls_keep_their_host(url, host):
    assert url_host(url) == host


def _app(customer) -> APIClient:
    _, raw = api_key_create(name="app-acme", customers=[customer])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.parametrize("provider", ["ga4", "miro"])
def test_an_integration_cannot_point_at_an_ambiguous_base_url(acme, provider):
    base_url = AMBIGUOUS[0] if provider == "ga4" else "https://attacker.example\\@api.miro.com"
    response = _app(acme).post(
        "/api/v1/integrations/",
        {"customer": "acme", "provider": provider, "config": {"base_url": base_url}},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "base_url" in response.json()["errors"]["config"]
    assert not Integration.objects.exists()


@responses.activate
def test_a_shared_secret_is_not_sent_to_an_ambiguous_url_stored_before(acme):
    credential_create(
        provider="ga4",
        purpose="api",
        fields={"measurement_id": "G-TEST123456", "api_secret": GA4_SECRET},
    )
    Integration.objects.create(customer=acme, provider_key="ga4", config={"base_url": AMBIGUOUS[0]})
    responses.post(re.compile(r"https://.*"), status=204)
    delivery, _ = services.delivery_create(
        api_key=None, customer="acme", action="ga4.track", input=TRACK
    )
    services.deliveries_attempt(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DEAD
    assert "shared by several customers" in delivery.last_error
    assert not responses.calls


@responses.activate
def test_the_oauth_client_secret_is_not_sent_to_an_ambiguous_url(acme):
    credential_create(
        provider="miro",
        purpose="oauth_client",
        fields={"client_id": "app-client-id", "client_secret": "APP-CLIENT-SECRET"},
    )
    credential_create(
        provider="miro",
        purpose="api",
        customer=acme,
        fields={
            "access_token": "at",
            "refresh_token": "rt",
            "expires_at": timezone.now().isoformat(),
        },
    )
    config = {"base_url": "https://attacker.example\\@api.miro.com"}
    responses.post(re.compile(r"https://.*"), json={"access_token": "x", "expires_in": 3600})
    with pytest.raises(TokenRefreshFailed, match="client secret is sent only"):
        oauth_token_fresh(
            provider_key="miro",
            customer=acme,
            resolved=credential_resolve(provider="miro", customer=acme),
            config=config,
            trusted=False,
        )
    assert not responses.calls


@pytest.mark.parametrize(
    "config",
    [
        {"queue_url": "https://AKIA:SECRET@sqs.eu-west-1.amazonaws.com/1/q"},
        {"endpoint_url": "https://u:SECRET@sqs.eu-west-1.amazonaws.com"},
        {"endpoint_url": "http://169.254.169.254\\@sqs.eu-west-1.amazonaws.com"},
    ],
)
def test_sqs_sources_refuse_such_urls(config):
    """botocore, like urllib3, would connect to the host urlsplit does not see."""
    full = {"queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q", "region": "eu-west-1"}
    with pytest.raises(ValidationError) as refused:
        source_config_clean("sqs", full | config)
    assert "source_config" in refused.value.detail
