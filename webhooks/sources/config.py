"""The settings of each source kind (``WebhookEndpoint.source_config``): validated here, never a
secret (user names and passwords go in the endpoint's ``source_credential``), and every
destination checked against the egress policy when configured (``egress.destination_check`` on
the broker's ``host:port`` as if it were an http URL: the check only resolves and judges the
addresses). The consumers check again when they connect, and their connections are pinned to
the checked address (``broker_egress``: AMQP's by address, SQS's through an egress session). A
refusal tells the API caller neither the address nor whether the name resolved (a DNS oracle for
internal names); the log has both."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import structlog
from rest_framework import serializers

from integrations import egress
from integrations.egress_url import UrlRefused, url_split
from webhooks.models import EndpointSource

__all__ = ("AMQP_PORTS", "broker_destination_check", "source_config_clean", "sqs_endpoint_url")

AMQP_PORTS = {"amqp": 5672, "amqps": 5671}

logger = structlog.stdlib.get_logger(__name__)


def _http_url_shape(url: str) -> str:
    """A URL whose host every client reads alike (this refusal says what to fix; the egress
    policy's does not)."""
    try:
        url_split(url)
    except UrlRefused as exc:
        raise serializers.ValidationError(str(exc)) from None
    return url


class SqsConfig(serializers.Serializer):
    queue_url = serializers.URLField(max_length=1000)
    region = serializers.RegexField(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$", max_length=30)
    endpoint_url = serializers.URLField(
        max_length=1000,
        required=False,
        allow_null=True,
        default=None,
        help_text="Another SQS endpoint than AWS's regional one (a VPC endpoint, a test server).",
    )
    wait_seconds = serializers.IntegerField(min_value=0, max_value=20, default=20)
    batch_size = serializers.IntegerField(min_value=1, max_value=10, default=10)

    def validate_queue_url(self, url: str) -> str:
        return _http_url_shape(url)

    def validate_endpoint_url(self, url: str | None) -> str | None:
        return url and _http_url_shape(url)


class AmqpConfig(serializers.Serializer):
    url = serializers.CharField(
        max_length=1000, help_text="amqp://host:5672/vhost (amqps for TLS), without user:password."
    )
    queue = serializers.CharField(max_length=255)
    prefetch = serializers.IntegerField(min_value=1, max_value=1000, default=50)

    def validate_url(self, url: str) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            raise serializers.ValidationError("Enter an amqp:// or amqps:// URL.") from None
        if parts.scheme not in AMQP_PORTS or not parts.hostname:
            raise serializers.ValidationError("Enter an amqp:// or amqps:// URL with a host.")
        if parts.username or parts.password:
            raise serializers.ValidationError(
                "Put the user name and password in the endpoint's amqp credential, not the URL."
            )
        return _http_url_shape(url)


class MiroPollConfig(serializers.Serializer):
    board_id = serializers.CharField(max_length=100)
    interval_seconds = serializers.IntegerField(min_value=1, max_value=86_400, default=60)
    page_size = serializers.IntegerField(min_value=10, max_value=50, default=50)


SCHEMAS = {
    EndpointSource.SQS: SqsConfig,
    EndpointSource.AMQP: AmqpConfig,
    EndpointSource.MIRO_POLL: MiroPollConfig,
}


def sqs_endpoint_url(config: dict) -> str:
    return config.get("endpoint_url") or f"https://sqs.{config['region']}.amazonaws.com"


def amqp_address(url: str) -> tuple[str, int, str]:
    """(host, port, virtual host) of an AMQP URL ("/" when the path names none)."""
    parts = urlsplit(url)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return parts.hostname, parts.port or AMQP_PORTS[parts.scheme], vhost


def broker_destination_check(source: str, config: dict) -> None:
    """Raise ``egress.EgressRefused`` unless the policy lets us reach the source's broker."""
    if source == EndpointSource.SQS:
        egress.destination_check(sqs_endpoint_url(config))
        egress.destination_check(config["queue_url"])
    elif source == EndpointSource.AMQP:
        host, port, _ = amqp_address(config["url"])
        shown = f"[{host}]" if ":" in host else host
        egress.destination_check(f"http://{shown}:{port}/")


def source_config_clean(source: str, config) -> dict:
    """The validated config of a source (DRF ``ValidationError`` naming fields otherwise), its
    broker reachable under the egress policy."""
    schema = SCHEMAS.get(source)
    if schema is None:
        return {}
    if not isinstance(config, dict):
        raise serializers.ValidationError({"source_config": ["Expected a JSON object."]})
    serializer = schema(data=config)
    if not serializer.is_valid():
        raise serializers.ValidationError({"source_config": serializer.errors})
    cleaned = dict(serializer.validated_data)
    try:
        broker_destination_check(source, cleaned)
    except egress.EgressRefused as exc:
        logger.info("sources.broker_refused", source=source, reason=str(exc))
        raise serializers.ValidationError({"source_config": [exc.public_message]}) from None
    return cleaned
