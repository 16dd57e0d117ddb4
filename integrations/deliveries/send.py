"""Sending a prepared call (in a worker, for each attempt, or as a connection check) and
classifying the answer. Never raises for provider or network failures: it returns a
``CallOutcome`` whose records are safe to store (secrets masked)."""

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from django.views.decorators.debug import sensitive_variables

from customers.models import Customer
from integrations import egress
from integrations.deliveries.masking import Masker, excerpt, masker_for
from integrations.deliveries.prepare import PreparedCall
from integrations.egress import MAX_RESPONSE_BYTES
from integrations.egress_url import url_host
from integrations.models import Integration
from integrations.providers.base import BaseProvider
from integrations.providers.types import (
    CallContext,
    Interpretation,
    NotConfigured,
    Operation,
    Outcome,
    ProviderRequest,
    ProviderResponse,
)
from integrations.registry import get_provider

__all__ = (
    "RECORD_BODY_BYTES",
    "CallOutcome",
    "CallScope",
    "connection_check",
    "operation_execute",
)

logger = logging.getLogger(__name__)

# Body excerpts kept in request/response records (the delivery log shows them).
RECORD_BODY_BYTES = 20 * 1024


@dataclass(frozen=True)
class CallOutcome:
    """The classified result of one attempt.

    ``outcome`` is one of ``Outcome`` (success, retryable, terminal, rate_limited, auth_failed);
    ``retry_after`` is the delay the provider asked for in seconds (rate limits, Retry-After);
    ``error_class`` names the failure for logs and metrics (``timeout``, ``http_503`` …);
    ``request`` (method, url, headers, body) and ``response`` (status, headers, body ≤ 20 KB)
    have every secret masked."""

    outcome: str
    result: dict | None = None
    error: str = ""
    retry_after: float | None = None
    status: int | None = None
    error_class: str = ""
    duration_ms: int = 0
    request: dict = field(default_factory=dict)
    response: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCESS

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CallScope:
    """Who a call is for and what its credential may reach (DESIGN §10)."""

    customer_id: int | None
    credential_shared: bool = False
    trusted: bool = False


@sensitive_variables("credentials")
def operation_execute(
    *,
    call: PreparedCall,
    customer: Customer,
    credentials: Mapping[str, str],
    session: requests.Session,
    integration: Integration | None = None,
    idempotency_key: str | None = None,
    timeout: tuple[float, float],
    credential_shared: bool = False,
) -> CallOutcome:
    """Send ``call`` through ``session`` (no redirects, ``timeout`` = (connect, read)) and classify
    the answer. Never raises for provider or network failures.

    ``integration``: the call's integration when the caller already holds it (a worker loads a
    batch's with the deliveries); otherwise it is read by ``call.integration_id``.
    ``credential_shared``: ``credentials`` serve several customers (global, region, tier), so
    they go only to the provider's own hosts or a trusted integration's base URL."""
    provider = get_provider(call.provider_key)
    operation = provider.operations.get(call.operation)
    if integration is None and call.integration_id:
        integration = Integration.objects.filter(pk=call.integration_id).first()
    config = integration.config if integration else {}
    if operation is None:
        return CallOutcome(
            Outcome.TERMINAL,
            error=f"{provider.key} no longer offers '{call.operation}'.",
            error_class="unknown_operation",
        )
    outcome = _send(
        provider=provider,
        operation=operation,
        input=call.input,
        config=config,
        region=customer.region.code,
        credentials=credentials,
        session=session,
        idempotency_key=idempotency_key,
        timeout=timeout,
        scope=CallScope(
            customer_id=customer.pk,
            credential_shared=credential_shared,
            trusted=bool(integration and integration.trusted),
        ),
    )
    if outcome.ok and call.capability:
        binding = provider.capabilities[call.capability]
        outcome = dataclasses.replace(
            outcome, result=binding.translate_result(outcome.result, config)
        )
    return outcome


@sensitive_variables("credentials")
def connection_check(
    *,
    integration: Integration,
    credentials: Mapping[str, str],
    session: requests.Session,
    timeout: tuple[float, float],
    credential_shared: bool = False,
    deadline: float | None = None,
) -> CallOutcome:
    """A cheap authenticated read (Trello members/me, Grid /status, …) to prove the integration
    and credential work; classified exactly like an operation. ``deadline``: the total seconds
    the call may take (an egress session's; the attempt deadline otherwise)."""
    provider = get_provider(integration.provider_key)
    if provider.check_operation is None:
        return CallOutcome(
            Outcome.TERMINAL,
            error=f"{provider.name} has no outbound API to check.",
            error_class="not_checkable",
        )
    return _send(
        provider=provider,
        operation=provider.check_operation,
        input={},
        config=integration.config,
        region=integration.customer.region.code,
        credentials=credentials,
        session=session,
        idempotency_key=None,
        timeout=timeout,
        deadline=deadline,
        scope=CallScope(
            customer_id=integration.customer_id,
            credential_shared=credential_shared,
            trusted=integration.trusted,
        ),
    )


def _shared_credential_refusal(
    provider: BaseProvider, config: Mapping, scope: CallScope, url: str
) -> Interpretation | None:
    """A credential shared by several customers is sent only to the provider's own hosts or
    to the base URL of an integration an admin marked trusted; a customer's own credential may
    go wherever its integration points (egress rules still apply)."""
    if not scope.credential_shared or scope.trusted:
        return None
    parts = urlsplit(url)
    # The host HTTP clients connect to; none for a URL they read differently (refused below).
    host = url_host(url) or ""
    # Only the provider's own HTTPS endpoint: the same host over plain http or on another port
    # would carry the secret in clear or to whatever listens there.
    own = host and host in provider.own_hosts(config)
    if parts.scheme == "https" and parts.port in (None, 443) and own:
        return None
    return Interpretation(
        Outcome.TERMINAL,
        error=f"The {provider.name} credential serving this customer is shared by several "
        f"customers (global, region or tier); it is sent only to {provider.name}'s own hosts "
        f"or to a base_url an admin marked trusted, not to '{host}'. Give the customer its own "
        "credential, or have an admin mark the integration trusted.",
        error_class="credential_not_allowed",
    )


class _ResponseTooLarge(Exception):
    """Larger answers are refused rather than buffered: no provider call we make needs more."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


# (exception classes, outcome, error class, error message) of failures before an answer: the
# first that matches wins, hence the order. An egress refusal is not a network failure (retrying
# cannot change the policy's answer); a connect timeout is also a ConnectionError.
_TRANSPORT_FAILURES = (
    # The caller reads the delivery's error: the policy's words, never an address (the log's).
    ((egress.EgressRefused,), Outcome.TERMINAL, "egress_refused", "{exc.public_message}"),
    ((requests.ConnectTimeout,), Outcome.RETRYABLE, "connect_timeout", "Timed out: {exc}"),
    ((requests.Timeout,), Outcome.RETRYABLE, "read_timeout", "Timed out: {exc}"),
    (
        (requests.ConnectionError, requests.exceptions.ChunkedEncodingError),
        Outcome.RETRYABLE,
        "connection_error",
        "Connection failed: {exc}",
    ),
    (
        (_ResponseTooLarge,),
        Outcome.TERMINAL,
        "response_too_large",
        f"Response larger than {MAX_RESPONSE_BYTES} bytes.",
    ),
    ((requests.RequestException,), Outcome.TERMINAL, "request_error", "Request failed: {exc}"),
)
_TRANSPORT_ERRORS = tuple(cls for classes, *_ in _TRANSPORT_FAILURES for cls in classes)


def _transport_failure(exc: Exception) -> Interpretation:
    outcome, error_class, message = next(
        row[1:] for row in _TRANSPORT_FAILURES if isinstance(exc, row[0])
    )
    if isinstance(exc, egress.EgressRefused):
        logger.warning("deliveries.egress_refused detail=%s", exc)
    return Interpretation(outcome, error=message.format(exc=exc), error_class=error_class)


# Every local: the credentials, the request built with them, and the library frames below that
# hold both (and the answer, which may echo them) under names of their own.
@sensitive_variables()
def _send(
    *,
    provider: BaseProvider,
    operation: Operation,
    input: dict,
    config: Mapping,
    region: str | None,
    credentials: Mapping[str, str],
    session: requests.Session,
    idempotency_key: str | None,
    timeout: tuple[float, float],
    scope: CallScope,
    deadline: float | None = None,
) -> CallOutcome:
    started = time.monotonic()
    masker = masker_for(credentials, provider.secret_header_names(config))

    def finish(interpretation: Interpretation, **records) -> CallOutcome:
        return CallOutcome(
            outcome=str(interpretation.outcome),
            # Built from the provider's answer, which may echo what it was sent (credentials).
            result=masker.value(interpretation.result),
            error=masker.text(interpretation.error),
            retry_after=interpretation.retry_after,
            error_class=interpretation.error_class,
            duration_ms=int((time.monotonic() - started) * 1000),
            **records,
        )

    ctx = CallContext(
        config=config,
        credentials=credentials,
        region=region,
        idempotency_key=idempotency_key,
        customer_id=scope.customer_id,
    )
    built = _request_for(provider, operation, ctx, input, scope)
    if isinstance(built, Interpretation):
        return finish(built)
    session, prepared = _prepared(session, provider, *built)
    request_record = _request_record(prepared, masker)
    options = session.merge_environment_settings(prepared.url, {}, True, None, None)
    if deadline is not None:
        options["deadline"] = deadline  # only egress sessions (DeadlineSession) take one
    try:
        response = _transmit(session, prepared, timeout, options)
    except _TRANSPORT_ERRORS as exc:
        status = exc.status if isinstance(exc, _ResponseTooLarge) else None
        return finish(_transport_failure(exc), request=request_record, status=status)
    return finish(
        _interpretation(provider, operation, response, input, config),
        status=response.status,
        request=request_record,
        response=_response_record(response, masker),
    )


@sensitive_variables()
def _request_for(
    provider: BaseProvider, operation: Operation, ctx: CallContext, input: dict, scope: CallScope
) -> tuple[ProviderRequest, str] | Interpretation:
    """The authenticated request and its URL, or why it is not sent."""
    if missing := provider.missing_credentials(ctx.credentials):
        return Interpretation(
            Outcome.TERMINAL,
            error=f"The credential lacks required fields: {', '.join(missing)}.",
            error_class="credential_incomplete",
        )
    base_url = provider.base_url(config=ctx.config, region=ctx.region)
    try:
        built = operation.build_request(ctx, input)
        if not (base_url or built.url):
            raise NotConfigured(f"{provider.name} has no default address: set config.base_url.")
    except NotConfigured as exc:
        return Interpretation(Outcome.TERMINAL, error=str(exc), error_class="not_configured")
    except egress.EgressRefused as exc:
        return _transport_failure(exc)
    url = built.url or base_url + built.path
    if refusal := _shared_credential_refusal(provider, ctx.config, scope, url):
        return refusal
    provider.authenticate(ctx, built)
    return built, url


@sensitive_variables()
def _prepared(
    session: requests.Session, provider: BaseProvider, request: ProviderRequest, url: str
) -> tuple[requests.Session, requests.PreparedRequest]:
    """The session to send through and the request it prepared; a request that may reach
    private addresses goes through an egress session of its own."""
    if request.allow_private:
        session = egress.session_for(provider.key, allow_private=True)
    prepared = session.prepare_request(
        requests.Request(
            request.method,
            url,
            params=request.params,
            data=request.content,
            json=request.json,
            headers=request.headers,
        )
    )
    return session, prepared


def _request_record(prepared: requests.PreparedRequest, masker: Masker) -> dict:
    return {
        "method": prepared.method,
        "url": masker.text(prepared.url),
        "headers": masker.headers(prepared.headers),
        "body": masker.text(excerpt(prepared.body, RECORD_BODY_BYTES)),
    }


@sensitive_variables()
def _transmit(
    session: requests.Session, prepared: requests.PreparedRequest, timeout, options: dict
) -> ProviderResponse:
    """Send without redirects and read the answer, up to MAX_RESPONSE_BYTES."""
    raw = session.send(prepared, timeout=timeout, allow_redirects=False, **options)
    try:
        return ProviderResponse(status=raw.status_code, headers=raw.headers, body=_read(raw))
    finally:
        raw.close()


def _read(response: requests.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(64 * 1024):
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise _ResponseTooLarge(response.status_code)
    return bytes(body)


@sensitive_variables()
def _interpretation(
    provider: BaseProvider, operation: Operation, response: ProviderResponse, input, config
) -> Interpretation:
    try:
        return provider.interpret(operation, response, input, config)
    except Exception:
        # Interpreters classify every documented shape; anything else is a bug in an adapter,
        # logged with its traceback but still reported as an outcome, never raised at the worker.
        logger.exception(
            "integrations.interpret_failed provider=%s op=%s", provider.key, operation.name
        )
        return Interpretation(
            Outcome.TERMINAL,
            error=f"Unreadable {provider.name} response (HTTP {response.status}).",
            error_class="malformed_response",
        )


def _response_record(response: ProviderResponse, masker: Masker) -> dict:
    return {
        "status": response.status,
        "headers": masker.headers(response.headers),
        "body": masker.text(excerpt(response.body, RECORD_BODY_BYTES)),
    }
