"""Brokers for the source tests, all on this machine: an SQS server (moto's, started here on
127.0.0.1 with dummy credentials and no instance metadata) and the RabbitMQ at 127.0.0.1:5672
(guest/guest; ``.ci/run`` starts it; tests needing it skip with a reason where it is down)."""

import json
import os
import socket
import uuid
from pathlib import Path

import boto3
import pika
import pytest
from moto.server import ThreadedMotoServer

from credentials.services import credential_create
from tests.processes import free_port
from webhooks.services import endpoint_create, endpoint_source_create

# No AWS credential or metadata lookup on this machine may be used: dummy keys, no IMDS.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

RABBIT = ("127.0.0.1", 5672)
SQS_KEYS = {"access_key_id": "testing", "secret_access_key": "testing"}
REGION = "us-east-1"
EVENTBRIDGE_FIXTURE = (
    Path(__file__).parent.parent / "fixtures" / "eventbridge" / "shopify_products_update.json"
)


@pytest.fixture(scope="session")
def sqs_url():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def sqs(sqs_url):
    client = boto3.session.Session().client(
        "sqs",
        region_name=REGION,
        endpoint_url=sqs_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client
    client.close()


def _rabbit_up() -> bool:
    try:
        with socket.create_connection(RABBIT, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def rabbit():
    """A blocking channel to the local RabbitMQ as guest; skips when none is reachable."""
    if not _rabbit_up():
        pytest.skip("RabbitMQ is not reachable at 127.0.0.1:5672 (.ci/run starts it)")
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(*RABBIT, credentials=pika.PlainCredentials("guest", "guest"))
    )
    yield connection.channel()
    connection.close()


def eventbridge_event(event_id: str, *, topic="orders/create", payload=None) -> str:
    """An SQS message body as an EventBridge rule delivers a Shopify webhook: the fixture's
    envelope (tests/fixtures/eventbridge/) with a fresh EventBridge id and these values."""
    event = json.loads(EVENTBRIDGE_FIXTURE.read_bytes())
    event["id"] = str(uuid.uuid4())
    event["region"] = REGION
    event["detail"]["metadata"].update(
        {
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": f"wh-{event_id}",
            "X-Shopify-Event-Id": event_id,
        }
    )
    event["detail"]["payload"] = payload or {"id": 820982911946154508, "name": f"#{event_id}"}
    return json.dumps(event)


@pytest.fixture
def sqs_endpoint(acme, sqs, sqs_url):
    def make(*, wait_seconds=0, batch_size=10, visibility=1):
        name = f"shopify-{uuid.uuid4().hex[:8]}"
        queue_url = sqs.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": str(visibility)}
        )["QueueUrl"]
        credential = credential_create(
            provider="amazon_sqs", purpose="api", customer=acme, fields=SQS_KEYS
        )
        return endpoint_source_create(
            customer=acme,
            provider="shopify",
            source="sqs",
            source_config={
                "queue_url": queue_url,
                "region": REGION,
                "endpoint_url": sqs_url,
                "wait_seconds": wait_seconds,
                "batch_size": batch_size,
            },
            source_credential=credential,
        )

    return make


@pytest.fixture
def amqp_endpoint(acme, rabbit):
    def make(*, prefetch=50):
        queue = f"switchyard-test-{uuid.uuid4().hex[:8]}"
        rabbit.queue_declare(queue=queue, durable=True)
        credential = credential_create(
            provider="amqp",
            purpose="api",
            customer=acme,
            fields={"username": "guest", "password": "guest"},
        )
        endpoint = endpoint_source_create(
            customer=acme,
            provider="shopify",
            source="amqp",
            source_config={"url": "amqp://127.0.0.1:5672/", "queue": queue, "prefetch": prefetch},
            source_credential=credential,
        )
        return endpoint, queue

    yield make


@pytest.fixture
def make_endpoint(acme):
    """A Shopify webhook endpoint of acme (as tests/webhooks/conftest.py makes them)."""

    def make(provider: str):
        credential = credential_create(
            provider=provider, purpose="webhook_signing", customer=acme, fields={"secret": "s"}
        )
        return endpoint_create(customer=acme, provider=provider, credential=credential)

    return make
