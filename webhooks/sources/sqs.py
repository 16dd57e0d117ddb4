"""Amazon SQS: long-poll a queue of Shopify EventBridge events, store each event, then delete the
messages stored. A consumer killed between the two leaves its messages on the queue; they come
back after the queue's visibility timeout and are recognised as duplicates."""

from __future__ import annotations

import boto3
import structlog
from botocore.config import Config as BotoConfig
from django.views.decorators.debug import sensitive_variables

from integrations import egress
from webhooks.models import WebhookEndpoint
from webhooks.sources.broker_egress import SqsSend
from webhooks.sources.config import broker_destination_check, sqs_endpoint_url
from webhooks.sources.consumers import broker_secret, message_store
from webhooks.sources.eventbridge import eventbridge_message

__all__ = ("SqsConsumer",)

logger = structlog.stdlib.get_logger(__name__)

CONNECT_TIMEOUT_SECONDS = 5


class SqsConsumer:
    """One endpoint's queue. ``receive_once`` is one long poll and its batch."""

    # (config, credential id) it was built from: the runner rebuilds it when they change.
    settings = None

    def __init__(self, endpoint: WebhookEndpoint):
        self.endpoint = endpoint
        self.config = endpoint.source_config
        self._client = None
        self._session = None

    @sensitive_variables("secret")
    def client(self):
        if self._client is None:
            broker_destination_check(self.endpoint.source, self.config)
            secret = broker_secret(self.endpoint)
            wait = self.config.get("wait_seconds", 20)
            self._session = egress.session_new("sqs")
            client = boto3.session.Session().client(
                "sqs",
                region_name=self.config["region"],
                endpoint_url=sqs_endpoint_url(self.config),
                aws_access_key_id=secret.get("access_key_id"),
                aws_secret_access_key=secret.get("secret_access_key"),
                # Retries stay few and short so a stop request is honoured promptly.
                config=BotoConfig(retries={"max_attempts": 2}),
            )
            # Every request goes out through egress's pinned session (botocore's own HTTP client
            # never runs): connect, then the long poll's wait plus room for the answer.
            send = SqsSend(self._session, timeout=(CONNECT_TIMEOUT_SECONDS, wait + 10))
            client.meta.events.register("before-send.sqs", send)
            self._client = client
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def receive_once(self) -> tuple[int, int]:
        """(messages received, events new). Deletes exactly the messages whose events are
        stored, also when storing a later one of the batch fails."""
        client = self.client()
        queue_url = self.config["queue_url"]
        response = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=self.config.get("batch_size", 10),
            WaitTimeSeconds=self.config.get("wait_seconds", 20),
            MessageSystemAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        stored, new = [], 0
        try:
            for message in messages:
                new += message_store(
                    self.endpoint, eventbridge_message(message["Body"], message["MessageId"])
                )
                stored.append(message)
        finally:
            self._delete(client, queue_url, stored)
        return len(messages), new

    def _delete(self, client, queue_url: str, messages: list[dict]) -> None:
        if not messages:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        result = client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        for failure in result.get("Failed", []):
            # Stored already: if it comes back it is a duplicate, so this costs a redelivery.
            logger.warning(
                "sources.sqs_delete_failed",
                endpoint=str(self.endpoint.public_id),
                provider=self.endpoint.provider,
                customer=self.endpoint.customer.slug,
                code=failure.get("Code"),
            )
