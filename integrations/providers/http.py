"""A generic HTTP endpoint: requests relative to the integration's base URL, with a configured
auth header carrying the credential's token, and the caller's idempotency key forwarded."""

from collections.abc import Mapping

from rest_framework import serializers

from integrations.constants import HEADER_AUTHORIZATION, HEADER_IDEMPOTENCY_KEY
from integrations.providers.base import BaseProvider
from integrations.providers.config import BaseUrlRequiredConfigSerializer, NoInput
from integrations.providers.types import (
    CallContext,
    CredentialField,
    CredentialPurpose,
    Operation,
    ProviderRequest,
    ProviderResponse,
)
from integrations.registry import register

__all__ = ("HttpProvider",)

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# The transport sets these; letting callers override them would break framing or routing.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
RESULT_TEXT_CHARS = 2000


class HttpConfigSerializer(BaseUrlRequiredConfigSerializer):
    auth_header = serializers.RegexField(
        r"^[A-Za-z0-9-]{1,100}$",
        required=False,
        help_text=f"Header that carries the token (default {HEADER_AUTHORIZATION}).",
    )
    auth_scheme = serializers.CharField(
        max_length=50,
        required=False,
        allow_blank=True,
        help_text="Prefix before the token, e.g. 'Bearer' (default); blank sends the bare token.",
    )


class RequestInput(serializers.Serializer):
    method = serializers.ChoiceField(choices=METHODS, default="POST")
    path = serializers.RegexField(
        r"^/(?!/)\S*$", default="/", help_text="Relative to the base URL, starting with '/'."
    )
    query = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    headers = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    body = serializers.JSONField(required=False, allow_null=True)

    def validate_headers(self, headers):
        reserved = sorted(name for name in headers if name.lower() in RESERVED_HEADERS)
        if reserved:
            raise serializers.ValidationError(
                f"These headers cannot be set: {', '.join(reserved)}."
            )
        return headers


def _request(ctx: CallContext, data: dict) -> ProviderRequest:
    request = ProviderRequest(
        data["method"],
        data["path"],
        params=dict(data.get("query") or {}),
        json=data.get("body"),
        headers=dict(data.get("headers") or {}),
    )
    if ctx.idempotency_key:
        request.headers[HEADER_IDEMPOTENCY_KEY] = ctx.idempotency_key
    return request


def _result(response: ProviderResponse, data: dict) -> dict:
    body = response.json_or_none()
    if body is None:
        body = response.text[:RESULT_TEXT_CHARS]
    return {"status": response.status, "body": body}


def _check_request(ctx: CallContext, data: dict) -> ProviderRequest:
    return ProviderRequest("GET", "/")


@register
class HttpProvider(BaseProvider):
    key = "http"
    name = "HTTP endpoint"
    description = "Any HTTP/JSON endpoint at the integration's base URL."
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField(
                "token", required=False, help_text="Sent in the configured auth header."
            ),
        ],
    }
    default_rate_limit = {"rate": 10, "per_seconds": 1}
    requires_integration = True
    config_serializer = HttpConfigSerializer
    operations = {
        "request": Operation(
            "request",
            "Send one request to the base URL; forwards Idempotency-Key.",
            RequestInput,
            _request,
            _result,
        ),
    }
    check_operation = Operation("check", "GET on the base URL", NoInput, _check_request, _result)

    def secret_header_names(self, config: Mapping) -> tuple[str, ...]:
        return (
            *super().secret_header_names(config),
            config.get("auth_header") or HEADER_AUTHORIZATION,
        )

    def authenticate(self, ctx: CallContext, request: ProviderRequest) -> None:
        token = ctx.credentials.get("token")
        if token:
            scheme = ctx.config.get("auth_scheme", "Bearer")
            header = ctx.config.get("auth_header") or HEADER_AUTHORIZATION
            request.headers[header] = f"{scheme} {token}" if scheme else token
