"""Selenium Grid 4 (reference/providers.md §5): ``/status`` capacity, W3C new/delete session,
optional basic auth, the W3C error envelope and queue time-outs."""

import base64
from collections.abc import Mapping

from rest_framework import serializers

from integrations.constants import HEADER_AUTHORIZATION
from integrations.providers.base import BaseProvider
from integrations.providers.config import BaseUrlRequiredConfigSerializer, NoInput
from integrations.providers.types import (
    ERROR_EXCERPT_CHARS,
    CallContext,
    CredentialField,
    CredentialPurpose,
    Interpretation,
    Operation,
    Outcome,
    PayloadInvalid,
    ProviderRequest,
    ProviderResponse,
)
from integrations.registry import register

__all__ = ("SeleniumProvider",)

AVAILABILITY_UP = "UP"
ERROR_SESSION_NOT_CREATED = "session not created"
# The queue gives up with "New session request timed out": the Grid was busy, not wrong.
QUEUE_TIMEOUT_MARKER = "timed out"


class CreateSessionInput(serializers.Serializer):
    always_match = serializers.DictField(
        help_text='W3C alwaysMatch, e.g. {"browserName": "firefox"}.'
    )
    first_match = serializers.ListField(child=serializers.DictField(), required=False)


class DeleteSessionInput(serializers.Serializer):
    session_id = serializers.RegexField(r"^[A-Za-z0-9-]{1,100}$")


def _w3c_value(response: ProviderResponse) -> object:
    body = response.json_or_none()
    if not isinstance(body, dict) or "value" not in body:
        raise PayloadInvalid(f"Expected a W3C {{'value': …}} body, got: {response.excerpt()}")
    return body["value"]


def _status_request(ctx: CallContext, data: dict) -> ProviderRequest:
    return ProviderRequest("GET", "/status")


def _status_result(response: ProviderResponse, data: dict) -> dict:
    value = _w3c_value(response)
    if not isinstance(value, dict):
        raise PayloadInvalid("Grid status 'value' is not an object.")
    # "ready" changed meaning across Grid versions; free slots on UP nodes is what counts.
    nodes_up = [
        node
        for node in value.get("nodes") or []
        if isinstance(node, dict) and node.get("availability") == AVAILABILITY_UP
    ]
    free_slots = sum(
        1
        for node in nodes_up
        for slot in node.get("slots") or []
        if isinstance(slot, dict) and slot.get("session") is None
    )
    return {
        "ready": bool(value.get("ready")),
        "message": value.get("message", ""),
        "nodes_up": len(nodes_up),
        "free_slots": free_slots,
    }


def _create_session_request(ctx: CallContext, data: dict) -> ProviderRequest:
    capabilities = {"alwaysMatch": data["always_match"]}
    if data.get("first_match"):
        capabilities["firstMatch"] = data["first_match"]
    return ProviderRequest("POST", "/session", json={"capabilities": capabilities})


def _create_session_result(response: ProviderResponse, data: dict) -> dict:
    value = _w3c_value(response)
    if not isinstance(value, dict) or not value.get("sessionId"):
        raise PayloadInvalid("Grid answered without a sessionId.")
    return {"session_id": value["sessionId"], "capabilities": value.get("capabilities") or {}}


def _delete_session_request(ctx: CallContext, data: dict) -> ProviderRequest:
    return ProviderRequest("DELETE", f"/session/{data['session_id']}")


def _delete_session_result(response: ProviderResponse, data: dict) -> dict:
    return {"session_id": data["session_id"], "deleted": True}


@register
class SeleniumProvider(BaseProvider):
    key = "selenium"
    name = "Selenium Grid 4"
    description = "A Selenium Grid 4 (Router, Hub or Standalone): capacity and sessions."
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField("username", required=False, secret=False, help_text="Basic auth user."),
            CredentialField("password", required=False, help_text="Basic auth password."),
        ],
    }
    # The Grid documents no request limit; this default is an assumption, override per integration.
    default_rate_limit = {"rate": 10, "per_seconds": 1}
    requires_integration = True
    config_serializer = BaseUrlRequiredConfigSerializer
    operations = {
        "status": Operation(
            "status",
            "Grid state and free slots on UP nodes (GET /status).",
            NoInput,
            _status_request,
            _status_result,
        ),
        "create_session": Operation(
            "create_session",
            "Start a browser session (POST /session, W3C capabilities).",
            CreateSessionInput,
            _create_session_request,
            _create_session_result,
        ),
        "delete_session": Operation(
            "delete_session",
            "End a session (DELETE /session/{id}).",
            DeleteSessionInput,
            _delete_session_request,
            _delete_session_result,
        ),
    }
    check_operation = Operation("check", "GET /status", NoInput, _status_request, _status_result)

    def authenticate(self, ctx: CallContext, request: ProviderRequest) -> None:
        username, password = ctx.credentials.get("username"), ctx.credentials.get("password")
        if username and password:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            request.headers[HEADER_AUTHORIZATION] = f"Basic {token}"

    def _w3c_error(self, response: ProviderResponse) -> tuple[str, str]:
        body = response.json_or_none()
        value = body.get("value") if isinstance(body, dict) else None
        if isinstance(value, dict):
            return str(value.get("error") or ""), str(value.get("message") or "")
        # Grid 4.10 answered some errors with "value" as a string and a top-level message.
        message = body.get("message") if isinstance(body, dict) else None
        return "", str(message or value or response.excerpt())

    def error_message(self, response: ProviderResponse) -> str:
        error, message = self._w3c_error(response)
        return ": ".join(part for part in (error, message) if part)[:ERROR_EXCERPT_CHARS]

    def classify_error(self, response: ProviderResponse, config: Mapping) -> Interpretation:
        error, message = self._w3c_error(response)
        if error == ERROR_SESSION_NOT_CREATED:
            text = f"HTTP {response.status}: {self.error_message(response)}"
            if QUEUE_TIMEOUT_MARKER in message.lower():
                return Interpretation(Outcome.RETRYABLE, error=text, error_class="queue_timeout")
            return Interpretation(Outcome.TERMINAL, error=text, error_class="session_not_created")
        return super().classify_error(response, config)
