import pytest

from customers.services import api_key_create
from tests.webhooks.conftest import SECRETS
from webhooks.models import InboundEvent, Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def credential(acme):
    from credentials.services import credential_create

    return credential_create(
        provider="shopify",
        purpose="webhook_signing",
        customer=acme,
        fields={"secret": SECRETS["shopify"]},
    )


def test_create_endpoint_returns_full_receive_url(api, credential, settings):
    body = {"customer": "acme", "provider": "shopify", "credential": credential.pk}
    response = api.post("/api/v1/webhook-endpoints/", body, format="json")
    assert response.status_code == 201, response.content
    endpoint_id = response.json()["id"]
    assert response.json()["url"] == f"http://testserver/webhooks/shopify/{endpoint_id}/"
    settings.SWITCHYARD_PUBLIC_URL = "https://hooks.example.com"
    listed = api.get("/api/v1/webhook-endpoints/").json()["results"]
    assert listed[0]["url"] == f"https://hooks.example.com/webhooks/shopify/{endpoint_id}/"
    assert SECRETS["shopify"] not in str(listed)


def test_endpoint_tolerance_is_set_through_the_api(api, acme):
    from credentials.services import credential_create

    stripe = credential_create(
        provider="stripe", purpose="webhook_signing", customer=acme, fields={"secret": "whsec_x"}
    )
    body = {"customer": "acme", "provider": "stripe", "credential": stripe.pk}
    response = api.post(
        "/api/v1/webhook-endpoints/", {**body, "tolerance_seconds": 120}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["tolerance_seconds"] == 120
    default = api.post("/api/v1/webhook-endpoints/", body, format="json").json()
    assert default["tolerance_seconds"] is None  # the provider's 300 s
    too_wide = api.post(
        "/api/v1/webhook-endpoints/", {**body, "tolerance_seconds": 86400}, format="json"
    )
    assert too_wide.status_code == 400
    assert "tolerance_seconds" in too_wide.json()["errors"]


def test_tolerance_is_refused_where_the_scheme_signs_no_timestamp(api, credential):
    body = {"customer": "acme", "provider": "shopify", "credential": credential.pk}
    response = api.post(
        "/api/v1/webhook-endpoints/", {**body, "tolerance_seconds": 60}, format="json"
    )
    assert response.status_code == 400
    assert "signs no timestamp" in str(response.json()["errors"]["tolerance_seconds"])


def test_endpoint_needs_a_matching_signing_credential(api, credential):
    body = {"customer": "acme", "provider": "stripe", "credential": credential.pk}
    response = api.post("/api/v1/webhook-endpoints/", body, format="json")
    assert response.status_code == 400
    assert "credential" in response.json()["errors"]


def test_inbound_events_list_detail_replay(api, make_endpoint, post_webhook, globex):
    post_webhook(make_endpoint("shopify"))
    post_webhook(make_endpoint("stripe", customer=globex))
    response = api.get("/api/v1/inbound-events/", {"provider": "shopify"})
    assert response.status_code == 200
    (item,) = response.json()["results"]
    expected = {"id", "endpoint", "provider", "external_id", "type", "status", "received_at"}
    assert expected | {"signature_version"} <= set(item)
    assert item["status"] == "processed"
    assert item["signature_version"] == 1
    detail = api.get(f"/api/v1/inbound-events/{item['id']}/").json()
    assert detail["envelope"]["type"] == "shopify.products.update"
    assert "X-Shopify-Hmac-Sha256" not in detail["headers"]
    InboundEvent.objects.filter(pk=item["id"]).update(status="dead")
    replayed = api.post(f"/api/v1/inbound-events/{item['id']}/replay/")
    assert replayed.status_code == 202
    assert replayed.json()["status"] == "received"


def test_restricted_key_sees_only_its_customers_events(make_endpoint, post_webhook, acme, globex):
    from rest_framework.test import APIClient

    post_webhook(make_endpoint("stripe", customer=globex))
    _, raw = api_key_create(name="acme-app", customers=[acme])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/inbound-events/").json()["results"] == []
    event = InboundEvent.objects.get()
    assert client.get(f"/api/v1/inbound-events/{event.pk}/").status_code == 404


def test_subscription_secret_shown_once_and_on_rotation(api):
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["trello.*"], "allow_private": True}
    created = api.post("/api/v1/subscriptions/", body, format="json")
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    sub_id = created.json()["id"]
    shown = api.get(f"/api/v1/subscriptions/{sub_id}/").json()
    assert "secret" not in shown
    assert secret not in str(api.get("/api/v1/subscriptions/").json())
    rotated = api.post(
        f"/api/v1/subscriptions/{sub_id}/rotate-secret/", {"grace_seconds": 60}, format="json"
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (secret, None)
    versions = rotated.json()["secret_versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["expires_at"] is not None


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/hook", "http://10.0.0.5/hook", "http://localhost/x"]
)
def test_private_subscription_url_is_400_unless_allowed(api, url, settings):
    settings.SWITCHYARD_EGRESS_ALLOW = []
    body = {"url": url, "event_types": ["*"]}
    refused = api.post("/api/v1/subscriptions/", body, format="json")
    assert refused.status_code == 400
    assert "url" in refused.json()["errors"]
    assert not Subscription.objects.exists()
    allowed = api.post("/api/v1/subscriptions/", {**body, "allow_private": True}, format="json")
    assert allowed.status_code == 201


def test_bad_event_type_pattern_is_400(api):
    body = {"url": "http://127.0.0.1/x", "event_types": ["trello.*.x"], "allow_private": True}
    assert api.post("/api/v1/subscriptions/", body, format="json").status_code == 400
