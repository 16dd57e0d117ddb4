"""The types a provider speaks in: outcomes, credential purposes, errors, and the requests,
responses, operations and capability bindings that pass between an adapter and the engine."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from rest_framework import serializers

__all__ = (
    "ERROR_EXCERPT_CHARS",
    "CallContext",
    "CapabilityBinding",
    "CredentialField",
    "CredentialPurpose",
    "Interpretation",
    "NormalisedEvent",
    "NotConfigured",
    "Operation",
    "Outcome",
    "PayloadInvalid",
    "ProviderRequest",
    "ProviderResponse",
    "Rejected",
    "SignatureInvalid",
)

ERROR_EXCERPT_CHARS = 300


class CredentialPurpose:
    API = "api"
    WEBHOOK_SIGNING = "webhook_signing"
    # The app's own OAuth 2.0 client_id / client_secret: one admin-owned credential per provider.
    OAUTH_CLIENT = "oauth_client"
    CHOICES = (
        (API, "API access"),
        (WEBHOOK_SIGNING, "Webhook signing"),
        (OAUTH_CLIENT, "OAuth 2.0 client (the app's)"),
    )


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    RETRYABLE = "retryable", "Retryable"
    TERMINAL = "terminal", "Terminal"
    RATE_LIMITED = "rate_limited", "Rate limited"
    AUTH_FAILED = "auth_failed", "Authentication failed"


@dataclass(frozen=True)
class CredentialField:
    name: str
    required: bool = True
    secret: bool = True
    help_text: str = ""


# OAuth 2.0 providers (integrations/oauth.py): a customer's token may come with a refresh token,
# refreshed before expires_at and once on a 401; the app's client is one admin-owned credential.
OAUTH_REFRESH_FIELDS = (
    CredentialField("refresh_token", required=False, help_text="OAuth 2.0 refresh token."),
    CredentialField(
        "expires_at",
        required=False,
        secret=False,
        help_text="When the access token expires (ISO 8601).",
    ),
)
OAUTH_CLIENT_FIELDS = [
    CredentialField("client_id", secret=False, help_text="The app's OAuth client id."),
    CredentialField("client_secret", help_text="The app's OAuth client secret."),
]


class SignatureInvalid(Exception):
    """An inbound webhook failed verification; the message is a reason, never a secret."""


class NotConfigured(Exception):
    """A request cannot be built from this integration's config (e.g. no board_id); the message
    names the missing setting and becomes a terminal outcome."""


class Rejected(Exception):
    """A 2xx whose body says the provider refused the call (GA4 validation messages)."""


class PayloadInvalid(ValueError):
    """A verified inbound body is not the shape the provider documents."""


@dataclass(frozen=True)
class NormalisedEvent:
    type: str
    occurred_at: str | None
    data: dict


@dataclass
class ProviderRequest:
    """What an operation wants sent; ``path`` is joined to the integration's base URL.

    ``url`` replaces base URL + path when the destination is data rather than configuration (an
    outbound subscription's URL); ``content`` is sent as is instead of ``json`` when an
    operation signs the exact bytes (Standard Webhooks); ``allow_private`` sends it through the
    egress session that may reach non-public addresses (a subscription an admin allowed so);
    every other request goes through the egress policy (``integrations.egress``)."""

    method: str
    path: str
    params: dict = field(default_factory=dict)
    json: Any = None
    headers: dict = field(default_factory=dict)
    url: str | None = None
    content: bytes | None = None
    allow_private: bool = False


@dataclass(frozen=True)
class ProviderResponse:
    """A received response, already read (size-limited) so interpreters never touch the socket."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json_or_none(self) -> Any:
        """The parsed JSON body, or None when it is empty, HTML, plain text or broken JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def excerpt(self) -> str:
        text = " ".join(self.text.split())
        return text[:ERROR_EXCERPT_CHARS] or "(empty body)"


@dataclass(frozen=True)
class Interpretation:
    outcome: str
    result: dict | None = None
    error: str = ""
    retry_after: float | None = None
    error_class: str = ""


@dataclass(frozen=True)
class CallContext:
    """Everything a request builder needs besides the operation input."""

    config: Mapping[str, Any]
    credentials: Mapping[str, str]
    region: str | None
    idempotency_key: str | None = None
    # The delivery's customer: anything an operation loads by id is loaded within it.
    customer_id: int | None = None


@dataclass(frozen=True)
class Operation:
    """One call a provider offers, e.g. Trello ``move_card``.

    ``build_request(ctx, input) -> ProviderRequest``; ``interpret_success(response, input) -> dict``
    turns a 2xx into the normalised result and may raise ``PayloadInvalid`` for an unusable body.
    Non-2xx answers are classified by the provider (``BaseProvider.classify_error``), unless
    ``interpret_failure(response, input)`` answers first (an Interpretation, or None to defer).
    ``internal``: run by the platform for itself (fan-out to subscriptions); the API refuses it.
    """

    name: str
    description: str
    input_serializer: type[serializers.Serializer]
    build_request: Callable[[CallContext, dict], ProviderRequest]
    interpret_success: Callable[[ProviderResponse, dict], dict]
    internal: bool = False
    interpret_failure: Callable[[ProviderResponse, dict], Interpretation | None] | None = None


@dataclass(frozen=True)
class CapabilityBinding:
    """How a provider serves a provider-neutral capability.

    ``translate_input(input, config) -> operation input`` turns stage names into provider ids;
    ``translate_result(result, config) -> dict`` turns them back, so ids never leak to callers.
    ``input_fields`` maps operation fields to the capability field they come from, so an invalid
    value is reported on the caller's field; other invalid values come from the config.
    """

    operation: str
    translate_input: Callable[[dict, Mapping], dict]
    translate_result: Callable[[dict, Mapping], dict]
    input_fields: Mapping[str, str] = field(default_factory=dict)
