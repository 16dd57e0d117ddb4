"""Source endpoints in the admin: created through the same checks as the API (broker credential
of the customer, no password in the URL), their secrets never on the page."""

import json

import pytest
from django.contrib.auth.models import User

from credentials.services import credential_create
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

ADD = "/admin/webhooks/webhookendpoint/add/"
PASSWORD = "amqp-admin-secret"


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def amqp_credential(acme):
    return credential_create(
        provider="amqp",
        purpose="api",
        customer=acme,
        fields={"username": "u", "password": PASSWORD},
    )


def _form(acme, credential, url="amqp://127.0.0.1:5672/"):
    return {
        "customer": acme.pk,
        "provider": "shopify",
        "source": "amqp",
        "source_config": json.dumps({"url": url, "queue": "orders"}),
        "source_credential": credential.pk,
        "active": "on",
    }


def test_an_amqp_endpoint_is_configured_in_the_admin(admin_client, acme, amqp_credential):
    response = admin_client.post(ADD, _form(acme, amqp_credential))
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.source == "amqp" and endpoint.credential is None
    assert endpoint.source_config == {
        "url": "amqp://127.0.0.1:5672/",
        "queue": "orders",
        "prefetch": 50,
    }
    page = admin_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200
    assert PASSWORD not in page.content.decode()


def test_a_password_in_the_url_is_refused_on_the_form(admin_client, acme, amqp_credential):
    form = _form(acme, amqp_credential, url=f"amqp://u:{PASSWORD}@127.0.0.1:5672/")
    response = admin_client.post(ADD, form)
    assert response.status_code == 200  # the form again, with the error
    assert "amqp credential, not the URL" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_broker_the_egress_policy_refuses_is_refused_on_the_form(
    admin_client, acme, amqp_credential, settings
):
    settings.SWITCHYARD_EGRESS_ALLOW = []
    response = admin_client.post(ADD, _form(acme, amqp_credential, url="amqp://10.1.2.3:5672/"))
    assert response.status_code == 200  # the form again, with the reason
    page = response.content.decode()
    assert "is refused by the egress policy" in page and "non-public address" in page
    assert "SWITCHYARD_EGRESS_ALLOW" in page
    assert not WebhookEndpoint.objects.exists()


def test_a_webhook_endpoint_still_needs_its_signing_credential(admin_client, acme):
    form = {"customer": acme.pk, "provider": "shopify", "source": "webhook", "active": "on"}
    response = admin_client.post(ADD, form)
    assert response.status_code == 200
    assert not WebhookEndpoint.objects.exists()
