"""Serializers of the deliveries and dead-letter API."""

from rest_framework import serializers

from config.api.routers import MAX_ID
from config.api.serializers import KnownFieldsSerializer
from integrations.deliveries.models import Delivery, DeliveryAttempt

__all__ = (
    "MAX_BULK_IDS",
    "DeadLetterDryRunSerializer",
    "DeadLetterRetriedSerializer",
    "DeadLetterRetrySerializer",
    "DeliveryCreateSerializer",
    "DeliveryDetailSerializer",
    "DeliveryFilterSerializer",
    "DeliverySerializer",
    "DryRunSerializer",
)

# A longer list of ids is better said as a filter; this keeps one request's work bounded.
MAX_BULK_IDS = 1000


class DeliveryCreateSerializer(serializers.Serializer):
    customer = serializers.SlugField(max_length=64)
    action = serializers.CharField(max_length=100)
    input = serializers.JSONField(default=dict)


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
