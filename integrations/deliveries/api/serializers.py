"""Serializers of the deliveries and dead-letter API."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.routers import MAX_ID
from config.api.serializers import KnownFieldsSerializer
from integrations.deliveries.models import Delivery, DeliveryAttempt
from integrations.deliveries.services import IDEMPOTENCY_KEY_MAX_LENGTH

__all__ = (
    "MAX_BATCH_ITEMS",
    "MAX_BULK_IDS",
    "NOT_BEFORE_MAX_DAYS",
    "DeadLetterDryRunSerializer",
    "DeadLetterRetriedSerializer",
    "DeadLetterRetrySerializer",
    "DeliveryBatchItemSerializer",
    "DeliveryBatchResultsSerializer",
    "DeliveryBatchSerializer",
    "DeliveryCreateSerializer",
    "DeliveryDetailSerializer",
    "DeliveryFilterSerializer",
    "DeliverySerializer",
    "DryRunSerializer",
)

# A longer list of ids is better said as a filter; this keeps one request's work bounded.
MAX_BULK_IDS = 1000
# Items of one batch (DESIGN §11): within the default 1 MiB body at ~2 KB an item.
MAX_BATCH_ITEMS = 500
NOT_BEFORE_MAX_DAYS = 90


class DeliveryCreateSerializer(serializers.Serializer):
    customer = serializers.SlugField(max_length=64)
    action = serializers.CharField(max_length=100)
    input = serializers.JSONField(default=dict)
    not_before = serializers.DateTimeField(
        required=False,
        help_text=f"Not sent before this time (ISO 8601), at most {NOT_BEFORE_MAX_DAYS} days "
        "ahead; sent within about a second of it, cancellable until then.",
    )

    def validate_not_before(self, value):
        if value > timezone.now() + timedelta(days=NOT_BEFORE_MAX_DAYS):
            raise serializers.ValidationError(
                f"At most {NOT_BEFORE_MAX_DAYS} days ahead; schedule later calls later."
            )
        return value


class DeliveryBatchItemSerializer(KnownFieldsSerializer, DeliveryCreateSerializer):
    """One item of a batch: a single POST's body with its Idempotency-Key in the body. Unknown
    keys are refused: a misspelt ``not_before`` would send the call at once."""

    idempotency_key = serializers.CharField(
        min_length=1, max_length=IDEMPOTENCY_KEY_MAX_LENGTH, required=False
    )


@extend_schema_field(DeliveryBatchItemSerializer(many=True))
class BatchItemsField(serializers.ListField):
    """Objects, each validated on its own (an invalid item fails alone unless the batch is
    atomic); documented as the items they must be."""

    child = serializers.DictField()


class DeliveryBatchSerializer(KnownFieldsSerializer):
    """Up to MAX_BATCH_ITEMS deliveries in one request."""

    items = BatchItemsField(min_length=1, max_length=MAX_BATCH_ITEMS)
    atomic = serializers.BooleanField(
        default=False, help_text="Store nothing unless every item validates."
    )


class DeliveryBatchResultSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="202 stored, 200 replayed, else the problem's.")
    id = serializers.IntegerField(required=False)
    replayed = serializers.BooleanField(required=False)
    problem = serializers.DictField(required=False, help_text="application/problem+json body")


class DeliveryBatchResultsSerializer(serializers.Serializer):
    results = DeliveryBatchResultSerializer(many=True)


class AttemptSerializer(serializers.ModelSerializer):
    request = serializers.SerializerMethodField()
    response = serializers.SerializerMethodField()

    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "trigger",
            "outcome",
            "response_status",
            "started_at",
            "duration_ms",
            "credential_version",
            "error_class",
            "error",
            "retry_after",
            "next_delay_seconds",
            "request",
            "response",
        ]

    def get_request(self, attempt) -> dict:
        return {
            "method": attempt.request_method,
            "url": attempt.request_url,
            "headers": attempt.request_headers,
            "body": attempt.request_body,
        }

    def get_response(self, attempt) -> dict:
        return {
            "status": attempt.response_status,
            "headers": attempt.response_headers,
            "body": attempt.response_body,
        }


class DeliverySerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.slug")
    provider = serializers.CharField(source="provider_key")
    attempt_count = serializers.IntegerField(source="attempts")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "key",
            "status",
            "customer",
            "action",
            "provider",
            "operation",
            "input",
            "idempotency_key",
            "attempt_count",
            "attempt_limit",
            "next_attempt_at",
            "last_error",
            "dead_reason",
            "result",
            "created_at",
            "updated_at",
            "finished_at",
        ]


class DeliveryDetailSerializer(DeliverySerializer):
    attempts = AttemptSerializer(source="attempt_log", many=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempts"]


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
    customer = serializers.SlugField(required=False)
    provider = serializers.CharField(required=False)
    action = serializers.CharField(required=False)
    dead_reason = serializers.ChoiceField(choices=Delivery.DeadReason.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class DeadLetterFilterSerializer(KnownFieldsSerializer, DeliveryFilterSerializer):
    status = None  # dead letters are dead


class DeadLetterRetrySerializer(KnownFieldsSerializer):
    """What a bulk retry acts on, said explicitly (DESIGN §11): ``ids``, a non-empty ``filter``,
    or ``"all": true``; an unknown key is refused rather than ignored."""

    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=MAX_BULK_IDS,
        required=False,
    )
    filter = DeadLetterFilterSerializer(required=False)
    all = serializers.BooleanField(
        default=False, help_text="Retry every dead letter this key may see (no ids, no filter)."
    )

    def validate(self, attrs):
        given = [name for name in ("ids", "filter") if name in attrs]
        if len(given) == 2:
            raise serializers.ValidationError("Give either 'ids' or 'filter', not both.")
        if attrs["all"] and given:
            raise serializers.ValidationError(
                {"all": [f"'all' retries every dead letter; give it without '{given[0]}'."]}
            )
        if not attrs["all"] and not any(attrs.get(name) for name in given):
            raise serializers.ValidationError(
                {
                    "all": [
                        "No ids and no filter would retry every dead letter this key may see; "
                        'send "all": true to mean that.'
                    ]
                }
            )
        return attrs


class DryRunSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False)


class DeadLetterRetriedSerializer(serializers.Serializer):
    retried = serializers.IntegerField()


class DeadLetterDryRunSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    would_retry = serializers.IntegerField()
