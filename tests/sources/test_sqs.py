"""Shopify's EventBridge events from Amazon SQS (moto's server on 127.0.0.1): each message's
event is stored before the message is deleted, so a consumer that dies mid-batch loses nothing
and the messages that come back are duplicates, stored once."""

import json
import signal
import sys
import time

import pytest

from integrations.registry import get_provider
from tests.processes import ProcessStack
from tests.sources.conftest import EVENTBRIDGE_FIXTURE, eventbridge_event
from webhooks.models import InboundEvent
from webhooks.services import inbound_events_process
from webhooks.sources import consumers
from webhooks.sources import sqs as sqs_module
from webhooks.sources.eventbridge import eventbridge_message
from webhooks.sources.sqs import SqsConsumer

FIXTURES = EVENTBRIDGE_FIXTURE.parent.parent


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs, not even an except Exception."""


def _send(sqs, endpoint, event_ids):
    for event_id in event_ids:
        sqs.send_message(
            QueueUrl=endpoint.source_config["queue_url"], MessageBody=eventbridge_event(event_id)
        )


def _left(sqs, endpoint) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=endpoint.source_config["queue_url"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _drain(consumer, sqs, endpoint, *, timeout=20.0):
    deadline = time.monotonic() + timeout
    while _left(sqs, endpoint) and time.monotonic() < deadline:
        consumer.receive_once()
        time.sleep(0.2)
    assert _left(sqs, endpoint) == 0


def test_the_documented_envelope_becomes_the_webhook_it_carries_byte_for_byte():
    raw = EVENTBRIDGE_FIXTURE.read_bytes()
    message = eventbridge_message(raw, "m-0")
    # The same body as the webhook over HTTPS (the fixture's payload is that fixture's).
    assert message.body == (FIXTURES / "shopify" / "products_update__basic.json").read_bytes()
    assert message.headers == {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "products/update",
        "X-Shopify-Shop-Domain": "my-store.myshopify.com",
        "X-Shopify-API-Version": "2025-04",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Triggered-At": "2025-04-22T19:30:00.000Z",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    }
    assert message.fallback_id == "eventbridge:3c1c7a9e-2f0b-4c8e-9a51-6d0f4e7b8a12"
    envelope = get_provider("shopify").normalise(message.body, message.headers)
    assert envelope.type == "shopify.products.update"


@pytest.mark.parametrize(
    "change",
    [
        lambda event: event.pop("account"),  # not AWS's event structure
        lambda event: event.pop("resources"),
        lambda event: event.update(detail=[]),
        lambda event: event["detail"].pop("metadata"),
        # X-Shopify-* keys beside the payload, no metadata object: no such shape is documented.
        lambda event: event.update(detail={**event["detail"].pop("metadata"), **event["detail"]}),
    ],
)
def test_anything_but_that_envelope_is_passed_on_as_it_came(change):
    event = json.loads(EVENTBRIDGE_FIXTURE.read_bytes())
    change(event)
    raw = json.dumps(event)
    message = eventbridge_message(raw, "m-9")
    assert (message.body, message.headers, message.fallback_id) == (raw.encode(), {}, "sqs:m-9")


def test_the_envelope_becomes_the_webhook_it_carries():
    message = eventbridge_message(eventbridge_event("evt-1", topic="orders/paid"), "m-1")
    assert message.headers["X-Shopify-Topic"] == "orders/paid"
    assert message.headers["X-Shopify-Event-Id"] == "evt-1"
    assert "X-Shopify-Hmac-Sha256" not in message.headers  # a signature is never stored
    assert message.body.startswith(b'{"id":820982911946154508')
    assert message.fallback_id.startswith("eventbridge:")
    garbage = eventbridge_message("not json", "m-2")
    assert (garbage.body, garbage.fallback_id) == (b"not json", "sqs:m-2")


@pytest.mark.django_db(transaction=True)
def test_events_are_stored_processed_and_deleted_once(sqs, sqs_endpoint):
    endpoint = sqs_endpoint()
    _send(sqs, endpoint, ["evt-1", "evt-2", "evt-1"])  # Shopify may deliver an event twice
    _drain(SqsConsumer(endpoint), sqs, endpoint)
    events = InboundEvent.objects.filter(endpoint=endpoint)
    assert sorted(events.values_list("external_id", flat=True)) == ["evt-1", "evt-2"]
    statuses = inbound_events_process(event_ids=list(events.values_list("pk", flat=True)))
    assert set(statuses.values()) == {"processed"}
    event = events.get(external_id="evt-1")
    assert event.envelope["type"] == "shopify.orders.create"
    assert event.signature_version is None
    assert "X-Shopify-Hmac-Sha256" not in event.headers


@pytest.mark.django_db(transaction=True)
def test_a_message_that_is_no_envelope_is_stored_dead_not_dropped(sqs, sqs_endpoint):
    endpoint = sqs_endpoint()
    sqs.send_message(QueueUrl=endpoint.source_config["queue_url"], MessageBody="{broken")
    _drain(SqsConsumer(endpoint), sqs, endpoint)
    event = InboundEvent.objects.get(endpoint=endpoint)
    assert event.status == InboundEvent.Status.DEAD
    assert event.external_id.startswith("sqs:")


@pytest.mark.django_db(transaction=True)
def test_killed_mid_batch_loses_and_duplicates_nothing(sqs, sqs_endpoint, monkeypatch):
    endpoint = sqs_endpoint(batch_size=10, visibility=1)
    sent = [f"evt-{n}" for n in range(10)]
    _send(sqs, endpoint, sent)
    real_store, calls = consumers.message_store, []

    def dies_after_the_fifth_store(endpoint, message):
        created = real_store(endpoint, message)
        calls.append(created)
        if len(calls) == 5:
            raise Killed  # stored, never deleted
        return created

    monkeypatch.setattr(sqs_module, "message_store", dies_after_the_fifth_store)
    # A kill runs no cleanup: nothing of the batch is deleted.
    monkeypatch.setattr(SqsConsumer, "_delete", lambda self, client, url, messages: None)
    with pytest.raises(Killed):
        SqsConsumer(endpoint).receive_once()
    assert InboundEvent.objects.filter(endpoint=endpoint).count() == 5
    monkeypatch.undo()

    time.sleep(1.5)  # the visibility timeout: the whole batch comes back
    _drain(SqsConsumer(endpoint), sqs, endpoint)
    stored = list(
        InboundEvent.objects.filter(endpoint=endpoint).values_list("external_id", flat=True)
    )
    assert sorted(stored) == sorted(sent)


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_consumer_process_killed_with_sigkill_loses_and_duplicates_nothing(
    sqs, sqs_endpoint, tmp_path
):
    endpoint = sqs_endpoint(batch_size=10, visibility=2, wait_seconds=1)
    sent = [f"evt-{n}" for n in range(80)]
    _send(sqs, endpoint, sent)
    stack = ProcessStack.on_test_database(tmp_path, AWS_EC2_METADATA_DISABLED="true")
    events = InboundEvent.objects.filter(endpoint=endpoint)
    argv = ["manage.py", "consume", "sqs", "--endpoint", str(endpoint.public_id)]
    try:
        stack.start("consume", [sys.executable, *argv])
        stack.wait_for(lambda: events.count() >= 15, what="first events stored", timeout=60)
        stack.kill("consume", signal.SIGKILL)
        assert events.count() < len(sent), "the kill came too late to be mid-stream"
        stack.start("consume-again", [sys.executable, *argv])
        stack.wait_for(
            lambda: events.count() == len(sent) and _left(sqs, endpoint) == 0,
            what="every event stored and every message deleted",
            timeout=90,
        )
    finally:
        stack.stop()
    assert sorted(events.values_list("external_id", flat=True)) == sorted(sent)
