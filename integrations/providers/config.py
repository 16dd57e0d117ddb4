"""Integration config every provider understands (base URL, stages, rate limit, retry,
timeouts), validated before it is saved; providers subclass ``BaseConfigSerializer``."""

from urllib.parse import urlsplit

import structlog
from rest_framework import serializers

from integrations import egress
from integrations.deliveries.retry import MAX_ATTEMPTS, MAX_DELAY_SECONDS
from integrations.egress_url import UrlRefused, url_split

__all__ = (
    "BaseConfigSerializer",
    "BaseUrlField",
    "BaseUrlRequiredConfigSerializer",
    "NoInput",
)

# Bounds of config.rate_limit: beyond them a limit is a typo, not a provider's quota.
MAX_RATE = 1_000_000
MAX_RATE_WINDOW_SECONDS = 86_400

logger = structlog.stdlib.get_logger(__name__)


class NoInput(serializers.Serializer):
    """Input of operations that take none (connection checks read their config instead)."""


class RateLimitSerializer(serializers.Serializer):
    rate = serializers.IntegerField(min_value=1, max_value=MAX_RATE)
    per_seconds = serializers.FloatField(min_value=0.001, max_value=MAX_RATE_WINDOW_SECONDS)


class TimeoutsSerializer(serializers.Serializer):
    connect_seconds = serializers.FloatField(min_value=0.1, max_value=60, required=False)
    read_seconds = serializers.FloatField(min_value=0.1, max_value=300, required=False)


class RetrySerializer(serializers.Serializer):
    base_seconds = serializers.FloatField(min_value=0, max_value=MAX_DELAY_SECONDS, required=False)
    cap_seconds = serializers.FloatField(min_value=0, max_value=MAX_DELAY_SECONDS, required=False)
    max_attempts = serializers.IntegerField(min_value=1, max_value=MAX_ATTEMPTS, required=False)


class BaseUrlField(serializers.CharField):
    """An http(s) URL without query or fragment. Unlike URLField it accepts single-label hosts
    (``http://selenium-hub:4444``), which internal services and containers commonly have. Its
    destination must pass the egress policy now (public, or in SWITCHYARD_EGRESS_ALLOW); the
    connection checks again at send time. A refusal tells the caller neither the address nor
    whether the name resolved (the log has both)."""

    def to_internal_value(self, data):
        url = super().to_internal_value(data)
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            raise serializers.ValidationError("Enter an http(s) URL without query or fragment.")
        try:
            url_split(url)  # its refusals say what to fix; the policy's below do not
        except UrlRefused as exc:
            raise serializers.ValidationError(str(exc)) from None
        try:
            egress.destination_check(url)
        except egress.EgressRefused as exc:
            logger.info("egress.base_url_refused", host=parts.hostname, reason=str(exc))
            raise serializers.ValidationError(exc.public_message) from None
        return url


class BaseConfigSerializer(serializers.Serializer):
    """Non-secret integration settings every provider understands; providers add their own."""

    base_url = BaseUrlField(
        max_length=500,
        required=False,
        help_text="Overrides the provider's (regional) base URL, e.g. a fake server.",
    )
    stages = serializers.DictField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="workflow.proceed: stage name -> provider id (Trello list, Miro frame).",
    )
    board_id = serializers.CharField(required=False, max_length=200)
    rate_limit = RateLimitSerializer(required=False)
    retry = RetrySerializer(required=False)
    timeouts = TimeoutsSerializer(
        required=False,
        help_text="Per-call connect and read timeouts (seconds), overriding the provider's; "
        "each attempt is still held to the engine's total deadline.",
    )
    rate_limited_delay_seconds = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=MAX_DELAY_SECONDS,
        help_text="Back-off after a 429 that names no delay (the provider default otherwise).",
    )

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown setting."] for name in unknown})
        return attrs


class BaseUrlRequiredConfigSerializer(BaseConfigSerializer):
    """Config of providers that have no public address (a customer's own Grid or endpoint)."""

    base_url = BaseUrlField(max_length=500, help_text="Where the provider is reached.")
