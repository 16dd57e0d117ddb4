from django.http import Http404
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api.permissions import scope_require_admin
from config.api.problems import ProblemConflict
from credentials import selectors, services
from credentials.api.serializers import (
    CredentialCreateSerializer,
    CredentialRevokeSerializer,
    CredentialRotateSerializer,
    CredentialSerializer,
)

__all__ = ("CredentialViewSet",)


class CredentialViewSet(viewsets.GenericViewSet):
    serializer_class = CredentialSerializer

    def get_queryset(self):
        return selectors.credential_list(api_key=self.request.auth)

    def get_object(self):
        credential = selectors.credential_get(api_key=self.request.auth, pk=self.kwargs["pk"])
        if credential is None:
            raise Http404
        return credential

    def _detail(self, credential, status_code=status.HTTP_200_OK):
        fresh = selectors.credential_get(api_key=self.request.auth, pk=credential.pk)
        return Response(CredentialSerializer(fresh).data, status=status_code)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CredentialSerializer(page, many=True).data)

    def retrieve(self, request, pk):
        return Response(CredentialSerializer(self.get_object()).data)

    @extend_schema(request=CredentialCreateSerializer, responses={201: CredentialSerializer})
    @sensitive_variables("serializer")  # its repr shows the request data: the fields
    def create(self, request):
        serializer = CredentialCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data["customer"] is None:
            # A global, region or tier credential serves customers beyond any one app.
            scope_require_admin(request, "A credential not owned by one customer")
        try:
            credential = services.credential_create(
                **serializer.validated_data, created_by=request.auth
            )
        except services.CredentialConflict as exc:
            raise ProblemConflict(str(exc)) from None
        return self._detail(credential, status.HTTP_201_CREATED)

    @extend_schema(request=CredentialRotateSerializer, responses=CredentialSerializer)
    @action(detail=True, methods=["post"])
    @sensitive_variables("serializer")
    def rotate(self, request, pk):
        credential = self.get_object()
        serializer = CredentialRotateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.credential_rotate(
                credential=credential, **serializer.validated_data, created_by=request.auth
            )
        except services.CredentialConflict as exc:
            raise ProblemConflict(str(exc)) from None
        return self._detail(credential)

    @extend_schema(request=CredentialRevokeSerializer, responses=CredentialSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk):
        credential = self.get_object()
        serializer = CredentialRevokeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.credential_revoke(
            credential=credential, **serializer.validated_data, created_by=request.auth
        )
        return self._detail(credential)
