"""Deliveries and the dead-letter queue: thin views over the delivery engine's selectors and
services."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from config.api.pagination import CursorPagination
from config.api.problems import problem_body
from config.api.serializers import shared_serializer, validated
from integrations.deliveries import selectors, services
from integrations.deliveries.api.serializers import (
    DeadLetterDryRunSerializer,
    DeadLetterRetriedSerializer,
    DeadLetterRetrySerializer,
    DeliveryBatchItemSerializer,
    DeliveryBatchResultsSerializer,
    DeliveryBatchSerializer,
    DeliveryCreateSerializer,
    DeliveryDetailSerializer,
    DeliveryFilterSerializer,
    DeliverySerializer,
    DryRunSerializer,
)

__all__ = ("DeadLetterViewSet", "DeliveryViewSet")


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
        # The API's hot path: shared serializers, not two built per request.
        data = validated(DeliveryCreateSerializer, request.data)
        delivery, replayed = services.delivery_create(
            api_key=request.auth, idempotency_key=request.headers.get("Idempotency-Key"), **data
        )
        body = shared_serializer(DeliverySerializer).to_representation(delivery)
        if replayed:
            return Response(body, status=200, headers={"Idempotent-Replayed": "true"})
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=DeliveryBatchSerializer,
        responses={200: DeliveryBatchResultsSerializer},
        description="Up to 500 deliveries in one request: one result per item, in order "
        "(202 stored, 200 replayed by its idempotency_key, else its problem). With "
        '"atomic": true nothing is stored unless every item validates.',
    )
    @action(detail=False, methods=["post"])
    def batch(self, request):
        body = validated(DeliveryBatchSerializer, request.data)
        items, invalid = [], {}
        for index, raw in enumerate(body["items"]):
            try:
                items.append(validated(DeliveryBatchItemSerializer, raw))
            except ValidationError as exc:
                invalid[index] = exc
        if body["atomic"] and invalid:
            raise services.BatchInvalid({"items": {str(i): e.detail for i, e in invalid.items()}})
        results = iter(
            services.deliveries_create_batch(
                api_key=request.auth, items=items, atomic=body["atomic"]
            )
        )
        answers = [
            _batch_answer(invalid.get(index) or next(results))
            for index in range(len(body["items"]))
        ]
        return Response({"results": answers})

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


def _batch_answer(outcome) -> dict:
    if isinstance(outcome, APIException):
        return {"status": outcome.status_code, "problem": problem_body(outcome)}
    if outcome.error is not None:
        return {"status": outcome.error.status_code, "problem": problem_body(outcome.error)}
    if outcome.replayed:
        return {"status": 200, "id": outcome.delivery.pk, "replayed": True}
    return {"status": 202, "id": outcome.delivery.pk}


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
