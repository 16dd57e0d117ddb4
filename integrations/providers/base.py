"""What every provider declares. Adapters subclass ``BaseProvider`` and ``@register`` it.

A provider is the anti-corruption layer for one external system: it validates input before anything
goes downstream, builds the HTTP request, and classifies whatever comes back into one of five
outcomes. It never talks to the network itself; ``integrations.deliveries.send`` sends what it
builds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlsplit

from rest_framework import serializers

from integrations.constants import SECRET_HEADERS
from integrations.deliveries.retry import RetryPolicy
from integrations.providers.config import BaseConfigSerializer
from integrations.providers.types import (
    ERROR_EXCERPT_CHARS,
    CallContext,
    CapabilityBinding,
    CredentialField,
    CredentialPurpose,
    Interpretation,
    NormalisedEvent,
    Operation,
    Outcome,
    PayloadInvalid,
    ProviderRequest,
    ProviderResponse,
    Rejected,
)
from integrations.providers.wire import retry_after_seconds

__all__ = ("BaseProvider",)

# The engine's retry policy defaults, as a provider's config.retry would spell them.
DEFAULT_RETRY = {
    "base_seconds": RetryPolicy.base_seconds,
    "cap_seconds": RetryPolicy.cap_seconds,
    "max_attempts": RetryPolicy.max_attempts,
}


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
    # Path (on the base URL) of the OAuth 2.0 token endpoint, for providers whose access tokens
    # expire and are refreshed (integrations/oauth.py); None: tokens are used as given.
    oauth_token_path: ClassVar[str | None] = None
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

    def timeouts(self, config: Mapping, *, deadline: float) -> tuple[float, float]:
        """(connect, read) seconds per socket operation: the provider's, or the integration's
        ``config.timeouts``, never beyond ``deadline`` (the whole call's, which the pooled
        session enforces)."""
        timeouts = {**self.default_timeouts, **(config.get("timeouts") or {})}
        return (min(timeouts["connect_seconds"], deadline), min(timeouts["read_seconds"], deadline))

    # -- outbound ---------------------------------------------------------------------------

    def secret_header_names(self, config: Mapping) -> tuple[str, ...]:
        """Headers masked in stored records besides the global denylist."""
        return self.secret_headers

    def authenticate(self, ctx: CallContext, request: ProviderRequest) -> None:
        """Add credentials to ``request`` in place. Default: no authentication."""

    def pace_seconds(self, headers: Mapping[str, str], leak_per_second: float) -> float:
        """How long every send on the bucket's scope waits after an answer with these headers,
        for providers whose answers say how full their bucket is; 0: no pacing beyond the quota."""
        return 0.0

    def bucket_scope(self, config: Mapping) -> str | None:
        """Where the provider's own bucket lives when every credential sending there shares it
        (Shopify: the shop); None: the bucket is the credential's. The limits key it per
        customer as well, at ``default_rate_limit`` (integrations/limits/services.py)."""
        return None

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
        if operation.interpret_failure is not None:
            interpretation = operation.interpret_failure(response, input)
            if interpretation is not None:
                return interpretation
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
