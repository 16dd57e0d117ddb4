"""Deliveries and the dead-letter queue: thin views over integrations.deliveries."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api.pagination import CursorPagination
from config.api.routers import MAX_ID
from config.api.serializers import KnownFieldsSerializer
from integrations.deliveries import selectors, services
from integrations.models import Delivery, DeliveryAttempt

__all__ = ("DeadLetterViewSet", "DeliveryViewSet")

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


class DeliveryPagination(CursorPagination):
    ordering = ("-created_at", "-id")


FILTER_PARAMETERS = [
    OpenApiParameter(name, str, description=f"Filter by {name.replace('_', ' ')}.")
    for name in DeliveryFilterSerializer().fields
]


def _filters(request) -> dict:
    serializer = DeliveryFilterSerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class DeliveryViewSet(viewsets.GenericViewSet):
    serializer_class = DeliverySerializer
    pagination_class = DeliveryPagination

    def get_queryset(self):
        return selectors.delivery_list(api_key=self.request.auth, filters=_filters(self.request))

    def get_object(self):
        delivery = selectors.delivery_get(api_key=self.request.auth, delivery_id=self.kwargs["pk"])
        if delivery is None:
            raise Http404
        return delivery

    @extend_schema(parameters=FILTER_PARAMETERS)
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(
        request=DeliveryCreateSerializer,
        responses={202: DeliverySerializer, 200: DeliverySerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Same key and body return the original delivery (200).",
            )
        ],
    )
    def create(self, request):
        serializer = DeliveryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        delivery, replayed = services.delivery_create(
            api_key=request.auth,
            idempotency_key=request.headers.get("Idempotency-Key"),
            **serializer.validated_data,
        )
        if replayed:
            headers = {"Idempotent-Replayed": "true"}
            return Response(DeliverySerializer(delivery).data, status=200, headers=headers)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=DeliveryDetailSerializer)
    def retrieve(self, request, pk):
        return Response(DeliveryDetailSerializer(self.get_object()).data)

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk):
        delivery = services.delivery_retry(delivery=self.get_object())
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=DeliverySerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk):
        delivery = services.delivery_cancel(delivery=self.get_object())
        return Response(DeliverySerializer(delivery).data)


class DeadLetterPagination(CursorPagination):
    ordering = ("-finished_at", "-id")


class DeadLetterViewSet(viewsets.GenericViewSet):
    serializer_class = DeliverySerializer
    pagination_class = DeadLetterPagination

    @extend_schema(parameters=FILTER_PARAMETERS)
    def list(self, request):
        deliveries = selectors.dead_letter_list(api_key=request.auth, filters=_filters(request))
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(
        request=DeadLetterRetrySerializer,
        responses={202: DeadLetterRetriedSerializer, 200: DeadLetterDryRunSerializer},
        parameters=[
            OpenApiParameter(
                "dry_run", bool, description="Count what would be retried; retry nothing."
            )
        ],
    )
    @action(detail=False, methods=["post"])
    def retry(self, request):
        options = DryRunSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        serializer = DeadLetterRetrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dead = selectors.dead_letter_list(
            api_key=request.auth,
            filters=serializer.validated_data.get("filter"),
            ids=serializer.validated_data.get("ids"),
        )
        if options.validated_data["dry_run"]:
            return Response({"dry_run": True, "would_retry": dead.count()})
        retried = services.dead_letters_retry(queryset=dead)
        return Response({"retried": retried}, status=status.HTTP_202_ACCEPTED)
