"""AMQP 0-9-1 (RabbitMQ): consume a queue of relayed webhooks, store each, then acknowledge it.
A message carries the provider's webhook body as its body and the webhook's headers in its
``headers`` table (what a relay that forwards webhooks puts there), so the provider's adapter
identifies and normalises it as a webhook; the AMQP ``message_id`` is the event id when the
provider's cannot be read. Unacknowledged messages are requeued by the broker when a consumer's
connection dies, and come back as duplicates."""

from __future__ import annotations

import contextlib
import ssl

import pika
import structlog
from django.views.decorators.debug import sensitive_variables

from webhooks.models import WebhookEndpoint
from webhooks.sources.broker_egress import broker_address
from webhooks.sources.config import amqp_address
from webhooks.sources.consumers import broker_secret, message_store
from webhooks.sources.eventbridge import QueueMessage

__all__ = ("AmqpConsumer", "amqp_message")

logger = structlog.stdlib.get_logger(__name__)

# How long one consume round waits for a message before the caller may check for a stop.
IDLE_SECONDS = 1.0


def _text(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def amqp_message(properties, body: bytes) -> QueueMessage:
    headers = {
        str(name): _text(value)
        for name, value in (properties.headers or {}).items()
        if isinstance(value, str | bytes | int)
    }
    if properties.content_type and "content-type" not in {h.lower() for h in headers}:
        headers["Content-Type"] = properties.content_type
    fallback = f"amqp:{properties.message_id}" if properties.message_id else ""
    return QueueMessage(bytes(body), headers, fallback)


class AmqpConsumer:
    # (config, credential id) it was built from: the runner rebuilds it when they change.
    settings = None

    def __init__(self, endpoint: WebhookEndpoint):
        self.endpoint = endpoint
        self.config = endpoint.source_config
        self._connection = None
        self._channel = None

    @sensitive_variables("secret")
    def _parameters(self) -> pika.ConnectionParameters:
        host, port, vhost = amqp_address(self.config["url"])
        # Connect to the address the egress policy checked, not to the name again.
        pinned = broker_address(host, port)
        secret = broker_secret(self.endpoint)
        tls = self.config["url"].startswith("amqps:")
        return pika.ConnectionParameters(
            host=pinned.address,
            port=port,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(
                secret.get("username", ""), secret.get("password", "")
            ),
            heartbeat=30,
            blocked_connection_timeout=60,
            connection_attempts=1,
            socket_timeout=10,
            # TLS names the configured host: SNI, and the certificate is checked against it.
            ssl_options=pika.SSLOptions(ssl.create_default_context(), server_hostname=host)
            if tls
            else None,
        )

    def channel(self):
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(self._parameters())
            self._channel = self._connection.channel()
            # At most this many unacknowledged messages are held; a kill returns them all.
            self._channel.basic_qos(prefetch_count=self.config.get("prefetch", 50))
        return self._channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                connection.close()

    def receive_once(self, *, max_messages: int = 100) -> tuple[int, int]:
        """Consume until the queue is idle for IDLE_SECONDS or ``max_messages`` were taken:
        (messages received, events new). Each is acknowledged right after its event is stored."""
        channel = self.channel()
        received = new = 0
        for method, properties, body in channel.consume(
            self.config["queue"], inactivity_timeout=IDLE_SECONDS
        ):
            if method is None:
                break
            new += message_store(self.endpoint, amqp_message(properties, body))
            channel.basic_ack(method.delivery_tag)
            received += 1
            if received >= max_messages:
                break
        # Messages prefetched but not handled go back to the queue now, not at disconnect.
        channel.cancel()
        return received, new
