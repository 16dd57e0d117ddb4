import uuid

from django.core.management.base import BaseCommand

from webhooks.models import EndpointSource

SOURCES = (EndpointSource.SQS, EndpointSource.AMQP)


class Command(BaseCommand):
    help = (
        "Consume the queues of the inbound endpoints of one source (sqs: Shopify's EventBridge "
        "events in Amazon SQS; amqp: relayed webhooks in RabbitMQ). Each message is "
        "acknowledged only after its event is stored. Stops on SIGTERM."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", choices=[str(s) for s in SOURCES])
        parser.add_argument(
            "--endpoint", type=uuid.UUID, default=None, help="Only this endpoint (its id)."
        )

    def handle(self, *args, source: str, endpoint, **options):
        from config.shutdown import StopRequest
        from webhooks.sources.runner import consume_forever

        stop = StopRequest()
        stop.install()
        consume_forever(source=source, stop=stop, endpoint_id=endpoint)
