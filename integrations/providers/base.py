"""What every provider declares. Adapters subclass ``BaseProvider`` and ``@register`` it.

A provider is the anti-corruption layer for one external system: it validates input before anything
goes downstream, builds the HTTP request, and classifies whatever comes back into one of five
outcomes. It never talks to the network itself; ``integrations.actions`` sends what it builds.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.db import models
from django.views.decorators.debug import sensitive_variables
from rest_framework import serializers

from config.json_limits import MAX_JSON_DEPTH, json_violation
from integrations import egress
from integrations.constants import SECRET_HEADERS
from integrations.retry import MAX_ATTEMPTS, MAX_DELAY_SECONDS

__all__ = (
    "ERROR_EXCERPT_CHARS",
    "BaseConfigSerializer",
    "BaseProvider",
    "BaseUrlRequiredConfigSerializer",
    "CallContext",
    "CapabilityBinding",
    "CredentialField",
    "CredentialPurpose",
    "Interpretation",
    "NoInput",
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

DEFAULT_RETRY = {"base_seconds": 2, "cap_seconds": 3600, "max_attempts": 10}
ERROR_EXCERPT_CHARS = 300
# Bounds of config.rate_limit: beyond them a limit is a typo, not a provider's quota.
MAX_RATE = 1_000_000
MAX_RATE_WINDOW_SECONDS = 86_400


class CredentialPurpose:
    API = "api"
    WEBHOOK_SIGNING = "webhook_signing"
    CHOICES = ((API, "API access"), (WEBHOOK_SIGNING, "Webhook signing"))


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
    Non-2xx answers are classified by the provider (``BaseProvider.classify_error``).
    ``internal``: run by the platform for itself (fan-out to subscriptions); the API refuses it.
    """

    name: str
    description: str
    input_serializer: type[serializers.Serializer]
    build_request: Callable[[CallContext, dict], ProviderRequest]
    interpret_success: Callable[[ProviderResponse, dict], dict]
    internal: bool = False


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


class NoInput(serializers.Serializer):
    """Input of operations that take none (connection checks read their config instead)."""


class RateLimitSerializer(serializers.Serializer):
    rate = serializers.IntegerField(min_value=1, max_value=MAX_RATE)
    per_seconds = serializers.FloatField(min_value=0.001, max_value=MAX_RATE_WINDOW_SECONDS)


class TimeoutsSerializer(serializers.Serializer):
    connect_seconds = serializers.FloatField(min_value=0.1, max_value=60, required=False)
    read_seconds = serializers.FloatField(min_value=0.1, max_value=300, required=False)


class RetrySerializer(serializers.Serializer):
    base_seconds = serializers.FloatField(min_value=0, max_value=MAX_DELAY_SECONDS, required=False)
    cap_seconds = serializers.FloatField(min_value=0, max_value=MAX_DELAY_SECONDS, required=False)
    max_attempts = serializers.IntegerField(min_value=1, max_value=MAX_ATTEMPTS, required=False)


class BaseUrlField(serializers.CharField):
    """An http(s) URL without query or fragment. Unlike URLField it accepts single-label hosts
    (``http://selenium-hub:4444``), which internal services and containers commonly have. Its
    destination must pass the egress policy now (public, or in SWITCHYARD_EGRESS_ALLOW); the
    connection checks again at send time."""

    def to_internal_value(self, data):
        url = super().to_internal_value(data)
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            raise serializers.ValidationError("Enter an http(s) URL without query or fragment.")
        try:
            egress.destination_check(url)
        except egress.EgressRefused as exc:
            raise serializers.ValidationError(str(exc)) from None
        return url


class BaseConfigSerializer(serializers.Serializer):
    """Non-secret integration settings every provider understands; providers add their own."""

    base_url = BaseUrlField(
        max_length=500,
        required=False,
        help_text="Overrides the provider's (regional) base URL, e.g. a fake server.",
    )
    stages = serializers.DictField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="workflow.proceed: stage name -> provider id (Trello list, Miro frame).",
    )
    board_id = serializers.CharField(required=False, max_length=200)
    rate_limit = RateLimitSerializer(required=False)
    retry = RetrySerializer(required=False)
    timeouts = TimeoutsSerializer(
        required=False,
        help_text="Per-call connect and read timeouts (seconds), overriding the provider's; "
        "each attempt is still held to the engine's total deadline.",
    )
    rate_limited_delay_seconds = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=MAX_DELAY_SECONDS,
        help_text="Back-off after a 429 that names no delay (the provider default otherwise).",
    )

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown setting."] for name in unknown})
        return attrs


class BaseUrlRequiredConfigSerializer(BaseConfigSerializer):
    """Config of providers that have no public address (a customer's own Grid or endpoint)."""

    base_url = BaseUrlField(max_length=500, help_text="Where the provider is reached.")


class BaseProvider:
    key: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str] = ""
    # Keyed by purpose ("api", "webhook_signing"); a purpose a provider lacks is absent.
    credential_fields: ClassVar[dict[str, list[CredentialField]]] = {}
    default_base_url: ClassVar[str | None] = None
    # Region code -> base URL, where the provider has regional endpoints.
    regional_base_urls: ClassVar[dict[str, str]] = {}
    default_rate_limit: ClassVar[dict] = {"rate": 10, "per_seconds": 1}
    # Credential field -> limit the provider applies to every credential sharing that value
    # (Trello: per token, which is the credential, and per API key, which tokens share).
    shared_rate_limits: ClassVar[dict[str, dict]] = {}
    default_retry: ClassVar[dict] = DEFAULT_RETRY
    # Per socket operation; config.timeouts overrides them for one integration.
    default_timeouts: ClassVar[dict] = {"connect_seconds": 3.05, "read_seconds": 27.0}
    # Used when a 429 carries no delay the provider asks for.
    rate_limited_delay_seconds: ClassVar[float] = 10.0
    # True when calls cannot be addressed without per-customer settings (shop domain, base URL).
    requires_integration: ClassVar[bool] = False
    config_serializer: ClassVar[type[serializers.Serializer]] = BaseConfigSerializer
    operations: ClassVar[dict[str, Operation]] = {}
    capabilities: ClassVar[dict[str, CapabilityBinding]] = {}
    # The cheap authenticated read behind "Check connection"; its input comes from config.
    check_operation: ClassVar[Operation | None] = None
    # Headers that carry secrets for this provider, masked in every stored record.
    secret_headers: ClassVar[tuple[str, ...]] = ()
    # The only headers of a received webhook that are stored with it (matched case-insensitively):
    # what ``event_id``/``normalise`` read and operators need, never a signature or credential.
    # Providers extend this tuple with their own; the generic ones say what sent the body and how.
    inbound_headers: ClassVar[tuple[str, ...]] = (
        "Content-Type",
        "Content-Length",
        "Transfer-Encoding",
        "User-Agent",
        "X-Request-Id",
    )
    verifies_webhooks: ClassVar[bool] = False
    # How far a signed webhook timestamp may be from now, for schemes that sign one (None: the
    # scheme signs no timestamp); an endpoint's ``tolerance_seconds`` overrides it.
    webhook_tolerance_seconds: ClassVar[int | None] = None

    # -- configuration --------------------------------------------------------------------

    def clean_config(self, config: Mapping | None) -> dict:
        """Validated config; raises DRF ``ValidationError`` with field-level errors."""
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise serializers.ValidationError(["Expected a JSON object."])
        serializer = self.config_serializer(data=dict(config))
        serializer.is_valid(raise_exception=True)
        return json.loads(json.dumps(serializer.validated_data))

    def base_url(self, *, config: Mapping, region: str | None) -> str | None:
        url = config.get("base_url") or self.regional_base_urls.get(region or "")
        return (url or self.default_base_url or "").rstrip("/") or None

    def own_hosts(self, config: Mapping) -> frozenset[str]:
        """The provider's own API hosts: where a credential shared by several customers may
        be sent without an admin marking the integration trusted."""
        urls = [self.default_base_url, *self.regional_base_urls.values()]
        return frozenset(urlsplit(url).hostname for url in urls if url)

    def rate_limit(self, config: Mapping) -> dict:
        return dict(config.get("rate_limit") or self.default_rate_limit)

    def retry_settings(self, config: Mapping) -> dict:
        return {**self.default_retry, **(config.get("retry") or {})}

    def timeouts(self, config: Mapping) -> dict:
        return {**self.default_timeouts, **(config.get("timeouts") or {})}

    # -- outbound ---------------------------------------------------------------------------

    def secret_header_names(self, config: Mapping) -> tuple[str, ...]:
        """Headers masked in stored records besides the global denylist."""
        return self.secret_headers

    def authenticate(self, ctx: CallContext, request: ProviderRequest) -> None:
        """Add credentials to ``request`` in place. Default: no authentication."""

    def missing_credentials(self, credentials: Mapping[str, str]) -> list[str]:
        fields = self.credential_fields.get(CredentialPurpose.API, [])
        return [f.name for f in fields if f.required and not credentials.get(f.name)]

    def interpret(
        self, operation: Operation, response: ProviderResponse, input: dict, config: Mapping
    ) -> Interpretation:
        if 200 <= response.status < 300:
            try:
                result = operation.interpret_success(response, input)
            except Rejected as exc:
                return Interpretation(Outcome.TERMINAL, error=str(exc), error_class="rejected")
            except PayloadInvalid as exc:
                # The provider may well have applied a write; repeating it blindly could apply
                # it twice, so an unreadable success is surfaced rather than retried.
                return Interpretation(
                    Outcome.TERMINAL, error=str(exc), error_class="malformed_response"
                )
            return Interpretation(Outcome.SUCCESS, result=result)
        return self.classify_error(response, config)

    def classify_error(self, response: ProviderResponse, config: Mapping) -> Interpretation:
        """Shared HTTP semantics for non-2xx; providers refine ``error_message`` and delays."""
        status = response.status
        message = f"HTTP {status}: {self.error_message(response)}"
        if status == 429:
            delay = self.rate_limited_delay(response, config)
            return Interpretation(
                Outcome.RATE_LIMITED, error=message, retry_after=delay, error_class="rate_limited"
            )
        if status == 401:
            return Interpretation(Outcome.AUTH_FAILED, error=message, error_class="auth_failed")
        if status in (408, 425) or status >= 500:
            return Interpretation(
                Outcome.RETRYABLE,
                error=message,
                retry_after=retry_after_seconds(response),
                error_class=f"http_{status}",
            )
        if 300 <= status < 400:
            return Interpretation(
                Outcome.TERMINAL,
                error=f"HTTP {status}: redirects are not followed",
                error_class="redirect",
            )
        return Interpretation(Outcome.TERMINAL, error=message, error_class=f"http_{status}")

    def error_message(self, response: ProviderResponse) -> str:
        """The provider's own error text: ``code: message`` from a JSON body (Trello, Miro,
        Shopify shapes); plain text and HTML pages are excerpted, never parsed."""
        body = response.json_or_none()
        if isinstance(body, dict):
            code = next((body[k] for k in ("error", "code") if isinstance(body.get(k), str)), "")
            message = next((body[k] for k in ("message", "errors", "detail") if body.get(k)), "")
            text = ": ".join(str(part) for part in (code, message) if part)
            if text:
                return text[:ERROR_EXCERPT_CHARS]
        return response.excerpt()

    def rate_limited_delay(self, response: ProviderResponse, config: Mapping) -> float:
        """The delay the provider asked for; else the configured or provider default."""
        delay = retry_after_seconds(response)
        if delay is not None:
            return delay
        return float(config.get("rate_limited_delay_seconds") or self.rate_limited_delay_seconds)

    # -- inbound ----------------------------------------------------------------------------

    def stored_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers of a received webhook that may be kept (``inbound_headers``): a header
        not listed (``X-Auth-Token``…) may carry a secret, signatures have no use after
        verification."""
        allowed = {name.lower() for name in self.inbound_headers} - SECRET_HEADERS
        return {name: value for name, value in headers.items() if name.lower() in allowed}

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: list[tuple[int, str]],
        url: str,
        *,
        now: float | None = None,
        tolerance: float | None = None,
    ) -> int:
        """The version of the first secret that signed ``body``; raises ``SignatureInvalid``.
        ``tolerance``: seconds the signed timestamp may be off (None: the provider's default)."""
        raise NotImplementedError(f"{self.key} does not receive webhooks")

    def event_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        raise NotImplementedError(f"{self.key} does not receive webhooks")

    def normalise(self, body: bytes, headers: Mapping[str, str]) -> NormalisedEvent | None:
        raise NotImplementedError(f"{self.key} does not receive webhooks")


# -- helpers shared by the adapters ------------------------------------------------------------


def retry_after_seconds(response: ProviderResponse) -> float | None:
    """``Retry-After`` as seconds: delta-seconds (Shopify sends floats such as 0.05) or a date."""
    value = (response.header("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def json_object(response: ProviderResponse, *, key: str | None = None) -> dict:
    """The body as a JSON object (optionally one member of it); ``PayloadInvalid`` otherwise."""
    body = response.json_or_none()
    if key is not None and isinstance(body, dict):
        body = body.get(key)
    if not isinstance(body, dict):
        where = f"'{key}' " if key else ""
        raise PayloadInvalid(
            f"Expected a JSON object {where}in the response, got: {response.excerpt()}"
        )
    return body


def unix_seconds(value: str | None) -> int | None:
    """A signed header's Unix time in seconds, or None. ASCII digits only: ``str.isdigit`` and
    ``int`` also take '²' or Arabic-Indic digits. At most 12 of them, so arithmetic with it
    cannot overflow a float."""
    if value is None or not _UNIX_SECONDS.fullmatch(value):
        return None
    return int(value)


_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def headers_lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _not_json(constant: str):
    raise PayloadInvalid(f"Body holds {constant}, which is not JSON.")


def parse_json_body(body: bytes) -> dict:
    """The body as a JSON object, or PayloadInvalid: not JSON (``NaN`` and ``Infinity``
    included), not an object, or beyond ``config.json_limits`` (too deep, a NUL character)."""
    try:
        payload = json.loads(body, parse_constant=_not_json)
    except RecursionError:
        raise PayloadInvalid(f"Body is nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except PayloadInvalid:
        raise
    except (ValueError, UnicodeDecodeError):
        raise PayloadInvalid("Body is not JSON.") from None
    if not isinstance(payload, dict):
        raise PayloadInvalid("Body is not a JSON object.")
    if violation := json_violation(payload):
        raise PayloadInvalid(f"Body cannot be stored: {violation}.")
    return payload


@sensitive_variables()
def b64_hmac(secret: str, message: bytes, digestmod) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, digestmod).digest()).decode()


@sensitive_variables()
def check_secrets(secrets: list[tuple[int, str]], matches: Callable[[str], bool]) -> int:
    """The version of the first secret for which ``matches(secret)`` holds (each compared in
    constant time by the caller); every version is tried so timing does not reveal which."""
    matched = None
    for version, secret in secrets:
        if secret and matches(secret) and matched is None:
            matched = version
    if matched is None:
        raise SignatureInvalid("No signature matches any current or grace-period secret.")
    return matched
