"""The loop behind ``manage.py consume <sqs|amqp>``: one thread per active endpoint of that
source (picked up within RELOAD_SECONDS of being created, left when deactivated), each
consuming its queue until a stop is requested. A failure (broker down, credential refused,
destination refused) is recorded on the endpoint and retried after RETRY_SECONDS with a fresh
connection; nothing is acknowledged that was not stored. An egress refusal is recorded in the
words an API caller may read (``EgressRefused.public_message``); the log has the address."""

from __future__ import annotations

import threading

import structlog
from django.db import close_old_connections, connection

from config.shutdown import StopRequest
from integrations import egress
from webhooks.models import EndpointSource, WebhookEndpoint
from webhooks.sources.amqp import AmqpConsumer
from webhooks.sources.consumers import endpoints_consumed, source_status
from webhooks.sources.sqs import SqsConsumer

__all__ = ("CONSUMERS", "consume_forever")

logger = structlog.stdlib.get_logger(__name__)

CONSUMERS = {EndpointSource.SQS: SqsConsumer, EndpointSource.AMQP: AmqpConsumer}
RELOAD_SECONDS = 10.0
RETRY_SECONDS = 5.0


def consume_forever(*, source: str, stop: StopRequest, endpoint_id=None) -> None:
    threads: dict[int, threading.Thread] = {}
    logger.info("consume.started", source=source)
    while not stop.is_set():
        try:
            for endpoint in endpoints_consumed(source=source, endpoint_id=endpoint_id):
                if endpoint.pk not in threads or not threads[endpoint.pk].is_alive():
                    thread = threading.Thread(
                        target=_consume_endpoint,
                        args=(endpoint.pk, source, stop),
                        name=f"consume-{source}-{endpoint.pk}",
                        daemon=True,
                    )
                    threads[endpoint.pk] = thread
                    thread.start()
        except Exception:
            logger.exception("consume.reload_failed", source=source)
        close_old_connections()
        stop.wait(RELOAD_SECONDS)
    for thread in threads.values():
        thread.join(timeout=60)
    logger.info("consume.stopped", source=source)


def _current(endpoint_pk: int, source: str) -> WebhookEndpoint | None:
    return (
        WebhookEndpoint.objects.select_related("customer", "source_credential")
        .filter(pk=endpoint_pk, source=source, active=True, customer__active=True)
        .first()
    )


def _failed(endpoint: WebhookEndpoint, exc: Exception) -> None:
    message = str(exc)
    if isinstance(exc, egress.EgressRefused):
        logger.warning("consume.egress_refused", endpoint=str(endpoint.public_id), reason=message)
        message = exc.public_message
    source_status(endpoint, error=f"{exc.__class__.__name__}: {message}")


def _consume_endpoint(endpoint_pk: int, source: str, stop: StopRequest) -> None:
    consumer = None
    try:
        while not stop.is_set():
            endpoint = _current(endpoint_pk, source)
            if endpoint is None:
                break
            settings = (endpoint.source_config, endpoint.source_credential_id)
            if consumer is None or settings != consumer.settings:
                if consumer is not None:
                    consumer.close()
                consumer = CONSUMERS[source](endpoint)
                consumer.settings = settings
            try:
                received, new = consumer.receive_once()
            except Exception as exc:
                _failed(endpoint, exc)
                consumer.close()
                consumer = None
                stop.wait(RETRY_SECONDS)
                continue
            if received:
                source_status(endpoint)
                logger.info(
                    "consume.batch",
                    endpoint=str(endpoint.public_id),
                    provider=endpoint.provider,
                    customer=endpoint.customer.slug,
                    source=source,
                    received=received,
                    new=new,
                )
    finally:
        if consumer is not None:
            consumer.close()
        connection.close()
