"""Webhook endpoints, the inbound event log and outbound subscriptions: thin views over
webhooks.services / webhooks.selectors, scoped by the API key."""

from django.http import Http404
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api.pagination import CursorPagination
from config.api.permissions import scope_require_admin
from config.api.problems import ProblemConflict
from credentials.exceptions import CredentialConflict
from credentials.selectors import credential_get
from customers.selectors import customer_get
from webhooks import selectors, services
from webhooks.api import schema as _schema  # noqa: F401  (registers the OpenAPI extension)
from webhooks.api.serializers import (
    EndpointCreateSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    InboundEventDetailSerializer,
    InboundEventFilterSerializer,
    InboundEventSerializer,
    RotateSecretSerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
)
from webhooks.models import EndpointSource

__all__ = ("InboundEventViewSet", "SubscriptionViewSet", "WebhookEndpointViewSet")


def _customer(api_key, slug):
    customer = customer_get(api_key=api_key, slug=slug)
    if customer is None:
        raise serializers.ValidationError({"customer": [f"Unknown customer '{slug}'."]})
    return customer


def _credential(api_key, pk, field: str):
    if pk is None:
        return None
    credential = credential_get(api_key=api_key, pk=pk)
    if credential is None:
        raise serializers.ValidationError({field: ["Unknown credential."]})
    return credential


class WebhookEndpointViewSet(viewsets.GenericViewSet):
    serializer_class = EndpointSerializer
    lookup_value_converter = "uuid"

    def get_queryset(self):
        return selectors.endpoint_list(api_key=self.request.auth)

    def get_object(self):
        endpoint = selectors.endpoint_get_public(
            api_key=self.request.auth, public_id=self.kwargs["pk"]
        )
        if endpoint is None:
            raise Http404
        return endpoint

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=EndpointCreateSerializer, responses={201: EndpointSerializer})
    def create(self, request):
        data = EndpointCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        customer = _customer(request.auth, values["customer"])
        if values["source"] != EndpointSource.WEBHOOK:
            endpoint = services.endpoint_source_create(
                customer=customer,
                provider=values["provider"],
                source=values["source"],
                source_config=values["source_config"],
                source_credential=_credential(
                    request.auth, values["source_credential"], "source_credential"
                ),
                active=values["active"],
            )
            return Response(self.get_serializer(endpoint).data, status=status.HTTP_201_CREATED)
        if "credential" not in values:
            raise serializers.ValidationError({"credential": ["This field is required."]})
        endpoint = services.endpoint_create(
            customer=customer,
            provider=values["provider"],
            credential=_credential(request.auth, values["credential"], "credential"),
            active=values["active"],
            tolerance_seconds=values["tolerance_seconds"],
        )
        return Response(self.get_serializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointUpdateSerializer, responses={200: EndpointSerializer})
    def partial_update(self, request, pk):
        endpoint = self.get_object()
        data = EndpointUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        endpoint = services.endpoint_settings_update(
            endpoint=endpoint,
            active=values.get("active"),
            source_config=values.get("source_config"),
            source_credential=(
                _credential(request.auth, values["source_credential"], "source_credential")
                if "source_credential" in values
                else False
            ),
        )
        return Response(self.get_serializer(endpoint).data)


class InboundEventPagination(CursorPagination):
    ordering = ("-received_at", "-id")


class InboundEventViewSet(viewsets.GenericViewSet):
    serializer_class = InboundEventSerializer
    pagination_class = InboundEventPagination

    def get_queryset(self):
        return selectors.inbound_event_list(api_key=self.request.auth)

    def get_object(self):
        event = selectors.inbound_event_get(api_key=self.request.auth, pk=self.kwargs["pk"])
        if event is None:
            raise Http404
        return event

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str, description=f"Filter by {name.replace('_', ' ')}.")
            for name in InboundEventFilterSerializer().fields
        ]
    )
    def list(self, request):
        filters = InboundEventFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        events = selectors.inbound_event_list(api_key=request.auth, filters=filters.validated_data)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(InboundEventSerializer(page, many=True).data)

    @extend_schema(responses=InboundEventDetailSerializer)
    def retrieve(self, request, pk):
        return Response(InboundEventDetailSerializer(self.get_object()).data)

    @extend_schema(request=None, responses={202: InboundEventSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk):
        event = self.get_object()
        services.inbound_events_replay(queryset=type(event).objects.filter(pk=event.pk))
        event.refresh_from_db()
        return Response(InboundEventSerializer(event).data, status=status.HTTP_202_ACCEPTED)


class SubscriptionViewSet(viewsets.GenericViewSet):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return selectors.subscription_list(api_key=self.request.auth)

    def get_object(self):
        subscription = selectors.subscription_get(api_key=self.request.auth, pk=self.kwargs["pk"])
        if subscription is None:
            raise Http404
        return subscription

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    def retrieve(self, request, pk):
        return Response(SubscriptionSerializer(self.get_object()).data)

    @extend_schema(request=SubscriptionCreateSerializer, responses={201: SubscriptionSerializer})
    @sensitive_variables("secret", "body")
    def create(self, request):
        data = SubscriptionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["allow_private"]:
            # Internal apps live on private networks, but only an admin may aim Switchyard there.
            scope_require_admin(request, "allow_private on a subscription")
        slug = data.validated_data.pop("customer", None)
        restricted = request.auth is not None and request.auth.customer_limited
        if slug is None and restricted:
            raise serializers.ValidationError(
                {"customer": ["This API key is restricted to customers; name one."]}
            )
        customer = _customer(request.auth, slug) if slug else None
        subscription, secret = services.subscription_create(
            customer=customer, **data.validated_data, created_by=request.auth
        )
        body = {**SubscriptionSerializer(subscription).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=RotateSecretSerializer, responses={200: SubscriptionSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    @sensitive_variables("secret")
    def rotate_secret(self, request, pk):
        subscription = self.get_object()
        data = RotateSecretSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            secret = services.subscription_rotate_secret(
                subscription=subscription,
                grace_seconds=data.validated_data["grace_seconds"],
                created_by=request.auth,
            )
        except CredentialConflict as exc:
            raise ProblemConflict(str(exc)) from None
        subscription = self.get_object()
        return Response({**SubscriptionSerializer(subscription).data, "secret": secret})
