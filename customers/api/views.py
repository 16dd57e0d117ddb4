from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from config.api.permissions import AdminScopeForWrites
from customers import selectors, services
from customers.api.serializers import CustomerSerializer, CustomerUpdateSerializer, RegionSerializer

__all__ = ("CustomerViewSet", "RegionViewSet")


class RegionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = RegionSerializer
    permission_classes = [IsAuthenticated, AdminScopeForWrites]

    def get_queryset(self):
        return selectors.region_list()

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        region = services.region_create(**serializer.validated_data)
        return Response(self.get_serializer(region).data, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[
        OpenApiParameter("region", str, description="Filter by region code."),
        OpenApiParameter("tier", str, description="Filter by tier."),
        OpenApiParameter("active", bool, description="Filter by active flag."),
    ]
)
class CustomerViewSet(viewsets.GenericViewSet):
    serializer_class = CustomerSerializer
    permission_classes = [IsAuthenticated, AdminScopeForWrites]
    lookup_field = "slug"
    lookup_value_converter = "slug"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        params = self.request.query_params
        active = params.get("active")
        filters = {
            "region": params.get("region"),
            "tier": params.get("tier"),
            "active": None if active is None else active.lower() in ("1", "true", "yes"),
        }
        return selectors.customer_list(api_key=self.request.auth, filters=filters)

    def get_object(self):
        customer = selectors.customer_get(api_key=self.request.auth, slug=self.kwargs["slug"])
        if customer is None:
            raise Http404
        return customer

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, slug):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_create(**serializer.validated_data)
        return Response(self.get_serializer(customer).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CustomerUpdateSerializer, responses=CustomerSerializer)
    def partial_update(self, request, slug):
        customer = self.get_object()
        serializer = CustomerUpdateSerializer(customer, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_update(customer=customer, **serializer.validated_data)
        return Response(self.get_serializer(customer).data)
