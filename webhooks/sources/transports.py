"""The brokers events are read from, as registry entries that only declare credential fields:
their secrets live in the vault (credentials app) like every other, under provider
``amazon_sqs`` or ``amqp`` and purpose ``api``. They have no operations: nothing is sent to a
broker through the delivery engine. Registered from ``WebhooksConfig.ready()``."""

from integrations.providers.base import BaseProvider
from integrations.providers.types import CredentialField, CredentialPurpose

__all__ = ("AmazonSqsTransport", "AmqpTransport")


class AmazonSqsTransport(BaseProvider):
    key = "amazon_sqs"
    name = "Amazon SQS (queue transport)"
    description = (
        "Credentials of an SQS queue that an inbound endpoint reads (Shopify's EventBridge "
        "delivery); no operations."
    )
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField("access_key_id", help_text="AWS access key id."),
            CredentialField("secret_access_key", help_text="AWS secret access key."),
        ],
    }


class AmqpTransport(BaseProvider):
    key = "amqp"
    name = "AMQP 0-9-1 broker (queue transport)"
    description = "Credentials of a RabbitMQ queue that an inbound endpoint reads; no operations."
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField("username", secret=False, help_text="Broker user name."),
            CredentialField("password", help_text="Broker password."),
        ],
    }
