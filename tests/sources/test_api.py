"""Source endpoints through the API: created and changed per customer, their broker secrets
only as credential ids, their destinations under the egress policy, bad input a 400 problem."""

import logging
import socket

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from credentials.services import credential_create
from customers.services import api_key_create
from integrations import egress
from integrations.services import integration_create
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhook-endpoints/"
SQS_CONFIG = {
    "queue_url": "http://127.0.0.1:4566/123456789012/shop",
    "region": "us-east-1",
    "endpoint_url": "http://127.0.0.1:4566",
}
AMQP_PASSWORD = "amqp-secret-password"


@pytest.fixture
def app(acme):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(name='a', customers=[acme])[1]}")
    return client


@pytest.fixture
def sqs_credential(acme):
    return credential_create(
        provider="amazon_sqs",
        purpose="api",
        customer=acme,
        fields={"access_key_id": "AKIAEXAMPLE", "secret_access_key": "sqs-secret-access-key"},
    )


@pytest.fixture
def amqp_credential(acme):
    return credential_create(
        provider="amqp",
        purpose="api",
        customer=acme,
        fields={"username": "relay", "password": AMQP_PASSWORD},
    )


def _create(client, **body):
    return client.post(URL, {"customer": "acme", **body}, format="json")


def test_an_sqs_endpoint_is_created_without_a_receive_url_or_secret(app, sqs_credential):
    response = _create(
        app,
        provider="shopify",
        source="sqs",
        source_config=SQS_CONFIG,
        source_credential=sqs_credential.pk,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"] is None and body["credential"] is None
    assert body["source"] == "sqs" and body["source_credential"] == sqs_credential.pk
    assert body["source_config"]["wait_seconds"] == 20
    assert b"sqs-secret-access-key" not in response.content
    detail = app.get(f"{URL}{body['id']}/")
    assert detail.status_code == 200 and detail.json()["source"] == "sqs"


def test_an_amqp_url_with_a_password_is_refused(app, amqp_credential):
    config = {"url": f"amqp://relay:{AMQP_PASSWORD}@127.0.0.1:5672/", "queue": "q"}
    response = _create(
        app,
        provider="shopify",
        source="amqp",
        source_config=config,
        source_credential=amqp_credential.pk,
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert "source_config" in response.json()["errors"]
    assert not WebhookEndpoint.objects.exists()


@override_settings(SWITCHYARD_EGRESS_ALLOW="")
def test_a_broker_the_egress_policy_refuses_is_a_400(app, amqp_credential):
    config = {"url": "amqp://10.1.2.3:5672/", "queue": "q"}
    response = _create(
        app,
        provider="shopify",
        source="amqp",
        source_config=config,
        source_credential=amqp_credential.pk,
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    [message] = response.json()["errors"]["source_config"]
    assert "refused by the egress policy" in message and "non-public" in message
    assert "SWITCHYARD_EGRESS_ALLOW" in message
    assert "10.1.2.3" not in message
    assert not WebhookEndpoint.objects.exists()


@override_settings(SWITCHYARD_EGRESS_ALLOW="")
def test_a_refusal_answers_no_question_about_internal_names(
    app, amqp_credential, monkeypatch, caplog
):
    """Neither the address a name resolves to nor whether it resolves at all: else the API is
    a DNS oracle for the internal network. The log keeps the detail for the operator."""
    real = egress._getaddrinfo

    def resolve(host, port, family=0):
        if host == "db.corp.internal":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]
        return real(host, port, family)

    monkeypatch.setattr(egress, "_getaddrinfo", resolve)
    caplog.set_level(logging.INFO)

    def refusal(host):
        config = {"url": f"amqp://{host}/", "queue": "q"}
        response = _create(
            app,
            provider="shopify",
            source="amqp",
            source_config=config,
            source_credential=amqp_credential.pk,
        )
        assert response.status_code == 400
        return response.content

    inward = refusal("db.corp.internal")
    assert b"10.20.30.40" not in inward
    assert inward == refusal("nx.invalid")
    assert "10.20.30.40" in "\n".join(str(record.msg) for record in caplog.records)
    assert not WebhookEndpoint.objects.exists()


def test_another_customers_broker_credential_is_refused(app, globex):
    theirs = credential_create(
        provider="amqp", purpose="api", customer=globex, fields={"username": "u", "password": "p"}
    )
    config = {"url": "amqp://127.0.0.1:5672/", "queue": "q"}
    response = _create(
        app, provider="shopify", source="amqp", source_config=config, source_credential=theirs.pk
    )
    assert response.status_code == 400
    assert "source_credential" in response.json()["errors"]


def test_a_shared_broker_credential_is_refused(app, api):
    shared = credential_create(
        provider="amqp", purpose="api", fields={"username": "u", "password": "p"}
    )
    config = {"url": "amqp://127.0.0.1:5672/", "queue": "q"}
    for client in (app, api):
        response = _create(
            client,
            provider="shopify",
            source="amqp",
            source_config=config,
            source_credential=shared.pk,
        )
        assert response.status_code == 400, response.content


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "shopify", "source": "sqs", "source_config": ["not", "an", "object"]},
        {"provider": "shopify", "source": "sqs", "source_config": {"region": "nowhere"}},
        {"provider": "trello", "source": "sqs", "source_config": SQS_CONFIG},
        {"provider": "miro", "source": "miro_poll", "source_config": {"board_id": "b"}},
        {"provider": "shopify", "source": "carrier-pigeon"},
        {"provider": "shopify"},  # a webhook endpoint needs its signing credential
    ],
)
def test_bad_source_input_is_a_400_problem(app, body):
    response = _create(app, **body)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"


def test_a_miro_poll_endpoint_needs_and_uses_the_customers_integration(app, acme):
    integration_create(
        customer=acme, provider_key="miro", config={"base_url": "http://127.0.0.1:9"}
    )
    response = _create(
        app, provider="miro", source="miro_poll", source_config={"board_id": "uXjV1="}
    )
    assert response.status_code == 201, response.content
    endpoint_id = response.json()["id"]
    patched = app.patch(
        f"{URL}{endpoint_id}/",
        {"source_config": {"board_id": "uXjV2=", "interval_seconds": 5}, "active": False},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["source_config"]["board_id"] == "uXjV2="
    assert patched.json()["active"] is False


def test_a_webhook_endpoint_takes_no_source_settings(app, make_endpoint):
    endpoint = make_endpoint("shopify")
    url = f"{URL}{endpoint.public_id}/"
    assert app.patch(url, {"source_config": {"queue": "q"}}, format="json").status_code == 400
    paused = app.patch(url, {"active": False}, format="json")
    assert paused.status_code == 200 and paused.json()["active"] is False
