"""Provider catalogue and integrations: thin views over integrations.selectors/services."""

import contextlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import scope_require_admin
from config.api.problems import ProblemConflict
from credentials.services import CredentialNotConfigured
from customers.selectors import customers_visible_to
from integrations import selectors, services
from integrations.api import schema as _schema  # noqa: F401  (registers the OpenAPI extensions)
from integrations.api.serializers import (
    ActionValidateSerializer,
    CheckResultSerializer,
    IntegrationSerializer,
)
from integrations.deliveries.prepare import action_prepare

__all__ = ("ActionValidateView", "IntegrationViewSet", "ProviderCatalogueView")

logger = logging.getLogger(__name__)


def _cache_add(key: str, *, timeout: float) -> bool:
    """Take ``key`` in the shared cache; True when taken, or when the cache is unreachable (a
    limit on checks must not take the checks down with Redis)."""
    try:
        return cache.add(key, 1, timeout=timeout)
    except Exception:
        logger.warning("integrations.check_slot_unavailable", exc_info=True)
        return True


class ProviderCatalogueView(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        description="Providers, operations, capabilities, input schemas and credential fields.",
    )
    def get(self, request):
        return Response(selectors.provider_catalogue())


class ActionValidateView(APIView):
    @extend_schema(
        request=ActionValidateSerializer,
        responses=OpenApiTypes.OBJECT,
        description="Validate and route an action exactly as POST /api/v1/deliveries/ would, "
        "without queueing or sending anything; errors are 400 problems naming the field.",
    )
    def post(self, request):
        serializer = ActionValidateSerializer(
            data=request.data, customers=customers_visible_to(request.auth)
        )
        serializer.is_valid(raise_exception=True)
        call = action_prepare(**serializer.validated_data)
        return Response(
            {
                "valid": True,
                "provider": call.provider_key,
                "operation": call.operation,
                "capability": call.capability,
                "integration": call.integration_id,
            }
        )


def _trust_check(request, data) -> None:
    # Trusted means shared credentials may go to its base_url: an admin's call.
    if data.get("trusted"):
        scope_require_admin(request, "A trusted integration")


@extend_schema(
    parameters=[
        OpenApiParameter("customer", str, description="Filter by customer slug."),
        OpenApiParameter("provider", str, description="Filter by provider key."),
        OpenApiParameter("active", bool, description="Filter by active flag."),
    ]
)
class IntegrationViewSet(viewsets.GenericViewSet):
    serializer_class = IntegrationSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        params = self.request.query_params
        active = params.get("active")
        filters = {
            "customer": params.get("customer"),
            "provider": params.get("provider"),
            "active": None if active is None else active.lower() in ("1", "true", "yes"),
        }
        return selectors.integration_list(api_key=self.request.auth, filters=filters)

    def get_object(self):
        integration = selectors.integration_get(
            api_key=self.request.auth, integration_id=self.kwargs["pk"]
        )
        if integration is None:
            raise Http404
        return integration

    def get_serializer(self, *args, **kwargs):
        kwargs.setdefault("customers", customers_visible_to(self.request.auth))
        return super().get_serializer(*args, **kwargs)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _trust_check(request, serializer.validated_data)
        integration = services.integration_create(**serializer.validated_data)
        return Response(self.get_serializer(integration).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk):
        integration = self.get_object()
        serializer = self.get_serializer(integration, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        _trust_check(request, serializer.validated_data)
        integration = services.integration_update(
            integration=integration, **serializer.validated_data
        )
        return Response(self.get_serializer(integration).data)

    @extend_schema(request=None, responses=CheckResultSerializer)
    @action(detail=True, methods=["post"])
    def check(self, request, pk):
        integration = self.get_object()
        # A check holds a web worker while the provider answers: one at a time per key, so a
        # key cannot tie up the workers with slow destinations.
        lock = f"switchyard:integration-check:{request.auth.pk}"
        if not _cache_add(lock, timeout=settings.SWITCHYARD_CHECK_DEADLINE_SECONDS + 5):
            raise Throttled(
                wait=settings.SWITCHYARD_CHECK_DEADLINE_SECONDS,
                detail="A connection check for this API key is already running; retry when "
                "it has finished.",
            )
        try:
            outcome = services.integration_check(integration=integration)
        except CredentialNotConfigured as exc:
            raise ProblemConflict(str(exc)) from None
        finally:
            with contextlib.suppress(Exception):
                cache.delete(lock)
        return Response(CheckResultSerializer(outcome.as_dict() | {"ok": outcome.ok}).data)
