"""Relayed webhooks from RabbitMQ (the local broker at 127.0.0.1:5672; skipped where it is not
running): each message is acknowledged right after its event is stored, so a consumer that dies
mid-batch leaves its unacknowledged messages to be requeued, and those come back as duplicates,
stored once."""

import json
import signal
import sys
import time

import pika
import pytest

from tests.processes import ProcessStack
from webhooks.models import InboundEvent
from webhooks.services import inbound_events_process
from webhooks.sources import amqp as amqp_module
from webhooks.sources import consumers
from webhooks.sources.amqp import AmqpConsumer

pytestmark = pytest.mark.django_db(transaction=True)


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs."""


def _publish(channel, queue, event_ids, *, with_ids=True):
    for event_id in event_ids:
        headers = {"X-Shopify-Topic": "orders/create"}
        if with_ids:
            headers["X-Shopify-Event-Id"] = event_id
        channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=json.dumps({"id": 1, "name": f"#{event_id}"}).encode(),
            properties=pika.BasicProperties(
                content_type="application/json",
                headers=headers,
                message_id=f"msg-{event_id}",
                delivery_mode=2,
            ),
        )


def _left(channel, queue) -> int:
    return channel.queue_declare(queue=queue, passive=True).method.message_count


def test_events_are_stored_processed_and_acknowledged_once(rabbit, amqp_endpoint):
    endpoint, queue = amqp_endpoint()
    _publish(rabbit, queue, ["evt-1", "evt-2", "evt-1"])
    _publish(rabbit, queue, ["no-event-id"], with_ids=False)  # the AMQP message id then
    consumer = AmqpConsumer(endpoint)
    try:
        received, new = consumer.receive_once()
    finally:
        consumer.close()
    assert (received, new) == (4, 3)
    events = InboundEvent.objects.filter(endpoint=endpoint)
    ids = sorted(events.values_list("external_id", flat=True))
    assert ids == ["amqp:msg-no-event-id", "evt-1", "evt-2"]
    statuses = inbound_events_process(event_ids=list(events.values_list("pk", flat=True)))
    assert set(statuses.values()) == {"processed"}
    assert events.get(external_id="evt-2").envelope["type"] == "shopify.orders.create"
    assert _left(rabbit, queue) == 0


def test_killed_mid_batch_loses_and_duplicates_nothing(rabbit, amqp_endpoint, monkeypatch):
    endpoint, queue = amqp_endpoint(prefetch=10)
    sent = [f"evt-{n}" for n in range(10)]
    _publish(rabbit, queue, sent)
    real_store, calls = consumers.message_store, []

    def dies_after_the_fifth_store(endpoint, message):
        created = real_store(endpoint, message)
        calls.append(created)
        if len(calls) == 5:
            raise Killed  # stored, never acknowledged
        return created

    monkeypatch.setattr(amqp_module, "message_store", dies_after_the_fifth_store)
    dying = AmqpConsumer(endpoint)
    with pytest.raises(Killed):
        dying.receive_once()
    assert InboundEvent.objects.filter(endpoint=endpoint).count() == 5
    # Its connection goes with it: the broker requeues what was not acknowledged (a closed
    # socket does the same, as the SIGKILL test below shows).
    dying.close()
    monkeypatch.undo()

    consumer = AmqpConsumer(endpoint)
    deadline = time.monotonic() + 20
    try:
        while _left(rabbit, queue) and time.monotonic() < deadline:
            consumer.receive_once()
    finally:
        consumer.close()
    stored = InboundEvent.objects.filter(endpoint=endpoint).values_list("external_id", flat=True)
    assert sorted(stored) == sorted(sent)
    assert _left(rabbit, queue) == 0


@pytest.mark.processes
def test_a_consumer_process_killed_with_sigkill_loses_and_duplicates_nothing(
    rabbit, amqp_endpoint, tmp_path
):
    endpoint, queue = amqp_endpoint(prefetch=20)
    sent = [f"evt-{n}" for n in range(300)]
    _publish(rabbit, queue, sent)
    stack = ProcessStack.on_test_database(tmp_path)
    events = InboundEvent.objects.filter(endpoint=endpoint)
    argv = [sys.executable, "manage.py", "consume", "amqp", "--endpoint", str(endpoint.public_id)]
    try:
        stack.start("consume", argv)
        stack.wait_for(lambda: events.count() >= 20, what="first events stored", timeout=60)
        stack.kill("consume", signal.SIGKILL)
        assert events.count() < len(sent), "the kill came too late to be mid-stream"
        stack.start("consume-again", argv)
        stack.wait_for(
            lambda: events.count() == len(sent) and _left(rabbit, queue) == 0,
            what="every event stored and every message acknowledged",
            timeout=90,
        )
    finally:
        stack.stop()
    assert sorted(events.values_list("external_id", flat=True)) == sorted(sent)
