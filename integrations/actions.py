"""The interface the delivery engine calls: prepare (validate, route) and execute (send, classify).

``action_prepare`` runs when a delivery is accepted, so bad input is a 400 before anything is
queued; its ``PreparedCall`` is what gets stored. ``operation_execute`` runs in a worker for each
attempt and never raises for provider or network failures: it returns a ``CallOutcome`` whose
records are safe to store (secrets masked)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import ValidationError

from customers.models import Customer
from integrations import egress, selectors
from integrations.capabilities import CAPABILITIES, stages_of
from integrations.egress import MAX_RESPONSE_BYTES
from integrations.masking import excerpt, masker_for
from integrations.models import Integration
from integrations.providers.base import (
    BaseProvider,
    CallContext,
    Interpretation,
    NotConfigured,
    Operation,
    Outcome,
    ProviderResponse,
)
from integrations.registry import ProviderNotRegistered, get_provider, provider_keys

__all__ = (
    "DEFAULT_TIMEOUT",
    "RECORD_BODY_BYTES",
    "CallOutcome",
    "CallScope",
    "PreparedCall",
    "action_prepare",
    "connection_check",
    "operation_execute",
)

logger = logging.getLogger(__name__)

# (connect, read) seconds.
DEFAULT_TIMEOUT = (3.05, 27.0)
# Larger answers are refused rather than buffered: no provider call we make needs more.
# Body excerpts kept in request/response records (the delivery log shows them).
RECORD_BODY_BYTES = 20 * 1024


@dataclass(frozen=True)
class PreparedCall:
    """A validated, routed call, ready to store on a delivery and send later.

    ``input`` is JSON-serialisable and already in provider terms (stage names mapped to ids);
    ``capability`` names the capability it came from (e.g. ``workflow.proceed``), else None."""

    provider_key: str
    operation: str
    integration_id: int | None
    input: dict
    capability: str | None = None


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


def _invalid(field_name: str, error) -> ValidationError:
    return ValidationError({field_name: error if isinstance(error, dict | list) else [error]})


def _json_safe(data: dict) -> dict:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _validated(serializer_class, data: Mapping) -> dict:
    serializer = serializer_class(data=dict(data))
    if not serializer.is_valid():
        raise _invalid("input", serializer.errors)
    return serializer.validated_data


def _prepare_capability(*, customer: Customer, action: str, input: Mapping) -> PreparedCall:
    capability = CAPABILITIES[action]
    serving = selectors.integrations_serving(customer=customer, capability=action)
    if not serving:
        able = [p for p in provider_keys() if action in get_provider(p).capabilities]
        raise _invalid(
            "action",
            f"Customer '{customer.slug}' has no active integration that serves {action} "
            f"(providers: {', '.join(able)}).",
        )
    if len(serving) > 1:
        raise _invalid(
            "action",
            f"Customer '{customer.slug}' has several active integrations serving {action} "
            f"({', '.join(i.provider_key for i in serving)}); deactivate all but one.",
        )
    integration = serving[0]
    data = _validated(capability.input_serializer, input)
    stages = stages_of(integration.config)
    unknown = {
        name: [
            f"Unknown stage '{data[name]}'. Known stages: {', '.join(sorted(stages)) or 'none'}."
        ]
        for name in capability.stage_fields
        if name in data and data[name] not in stages
    }
    if unknown:
        raise _invalid("input", unknown)
    provider = get_provider(integration.provider_key)
    binding = provider.capabilities[action]
    operation = provider.operations[binding.operation]
    translated = operation.input_serializer(data=binding.translate_input(data, integration.config))
    if not translated.is_valid():
        caller_errors = {
            binding.input_fields[name]: errors
            for name, errors in translated.errors.items()
            if name in binding.input_fields
        }
        if caller_errors:
            raise _invalid("input", caller_errors)
        raise _invalid(
            "action",
            f"Integration {integration.pk} ({provider.key}) maps this input to invalid "
            f"{provider.key}.{operation.name} input: {translated.errors}. Check its config.",
        )
    return PreparedCall(
        provider_key=provider.key,
        operation=operation.name,
        integration_id=integration.pk,
        input=_json_safe(translated.validated_data),
        capability=action,
    )


def action_prepare(
    *, customer: Customer, action: str, input: dict, allow_internal: bool = False
) -> PreparedCall:
    """Resolve ``action`` (a capability such as ``workflow.proceed``, or ``<provider>.<operation>``)
    for ``customer`` and validate ``input``.

    Raises ``rest_framework.exceptions.ValidationError`` naming the field: ``{"action": [...]}``
    for an unknown action, provider or operation, or a missing integration;
    ``{"input": {field: [...]}}`` for invalid input (including unknown stage names).
    ``allow_internal``: the platform itself may prepare internal operations (fan-out); callers
    of the API never may."""
    if not isinstance(input, Mapping):
        raise _invalid("input", "Expected a JSON object.")
    if action in CAPABILITIES:
        return _prepare_capability(customer=customer, action=action, input=input)
    provider_key, dot, operation_name = (action or "").partition(".")
    if not dot:
        raise _invalid(
            "action",
            f"Unknown action '{action}'. Use a capability ({', '.join(CAPABILITIES)}) "
            "or <provider>.<operation>.",
        )
    try:
        provider = get_provider(provider_key)
    except ProviderNotRegistered as exc:
        raise _invalid("action", str(exc)) from None
    operation = provider.operations.get(operation_name)
    if operation is None:
        known = ", ".join(provider.operations) or "none (it only receives webhooks)"
        raise _invalid(
            "action", f"Unknown operation '{operation_name}' for {provider.key}. Known: {known}."
        )
    if operation.internal and not allow_internal:
        raise _invalid(
            "action",
            f"'{action}' is run by Switchyard itself (fan-out of events to subscriptions) and "
            "cannot be requested through the API.",
        )
    integration = selectors.integration_active_get(customer=customer, provider_key=provider.key)
    if integration is None and provider.requires_integration:
        raise _invalid(
            "action",
            f"Customer '{customer.slug}' has no active {provider.key} integration; "
            f"{provider.name} needs one (POST /api/v1/integrations/) for its address.",
        )
    return PreparedCall(
        provider_key=provider.key,
        operation=operation.name,
        integration_id=integration.pk if integration else None,
        input=_json_safe(_validated(operation.input_serializer, input)),
    )


@sensitive_variables("credentials")
def operation_execute(
    *,
    call: PreparedCall,
    customer: Customer,
    credentials: Mapping[str, str],
    session: requests.Session,
    integration: Integration | None = None,
    idempotency_key: str | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
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
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
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


@dataclass(frozen=True)
class CallScope:
    """Who a call is for and what its credential may reach (DESIGN §10)."""

    customer_id: int | None
    credential_shared: bool = False
    trusted: bool = False


def _shared_credential_refusal(
    provider: BaseProvider, config: Mapping, scope: CallScope, url: str
) -> Interpretation | None:
    """A credential shared by several customers is sent only to the provider's own hosts or
    to the base URL of an integration an admin marked trusted; a customer's own credential may
    go wherever its integration points (egress rules still apply)."""
    if not scope.credential_shared or scope.trusted:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    # Only the provider's own HTTPS endpoint: the same host over plain http or on another port
    # would carry the secret in clear or to whatever listens there.
    if parts.scheme == "https" and parts.port in (None, 443) and host in provider.own_hosts(config):
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
    pass


def _egress_refused(exc: Exception) -> Interpretation:
    """Terminal: the egress policy refused the destination (the message names host and address)."""
    return Interpretation(Outcome.TERMINAL, error=str(exc), error_class="egress_refused")


def _read_limited(response: requests.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(64 * 1024):
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise _ResponseTooLarge
    return bytes(body)


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

    if missing := provider.missing_credentials(credentials):
        return finish(
            Interpretation(
                Outcome.TERMINAL,
                error=f"The credential lacks required fields: {', '.join(missing)}.",
                error_class="credential_incomplete",
            )
        )
    ctx = CallContext(
        config=config,
        credentials=credentials,
        region=region,
        idempotency_key=idempotency_key,
        customer_id=scope.customer_id,
    )
    base_url = provider.base_url(config=config, region=region)
    try:
        built = operation.build_request(ctx, input)
        if not (base_url or built.url):
            raise NotConfigured(f"{provider.name} has no default address: set config.base_url.")
    except NotConfigured as exc:
        return finish(
            Interpretation(Outcome.TERMINAL, error=str(exc), error_class="not_configured")
        )
    except egress.EgressRefused as exc:
        return finish(_egress_refused(exc))
    url = built.url or base_url + built.path
    if refusal := _shared_credential_refusal(provider, config, scope, url):
        return finish(refusal)
    provider.authenticate(ctx, built)
    if built.allow_private:
        session = egress.session_for(provider.key, allow_private=True)
    prepared = session.prepare_request(
        requests.Request(
            built.method,
            url,
            params=built.params,
            data=built.content,
            json=built.json,
            headers=built.headers,
        )
    )
    request_record = {
        "method": prepared.method,
        "url": masker.text(prepared.url),
        "headers": masker.headers(prepared.headers),
        "body": masker.text(excerpt(prepared.body, RECORD_BODY_BYTES)),
    }
    settings = session.merge_environment_settings(prepared.url, {}, True, None, None)
    if deadline is not None:
        settings["deadline"] = deadline  # only egress sessions (DeadlineSession) take one
    try:
        raw = session.send(prepared, timeout=timeout, allow_redirects=False, **settings)
        try:
            body = _read_limited(raw)
        finally:
            raw.close()
    except egress.EgressRefused as exc:
        # Before the Timeout and ConnectionError branches: a refusal is not a network failure
        # and retrying cannot change the policy's answer.
        return finish(_egress_refused(exc), request=request_record)
    except requests.Timeout as exc:
        kind = "connect_timeout" if isinstance(exc, requests.ConnectTimeout) else "read_timeout"
        return finish(
            Interpretation(Outcome.RETRYABLE, error=f"Timed out: {exc}", error_class=kind),
            request=request_record,
        )
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        return finish(
            Interpretation(
                Outcome.RETRYABLE, error=f"Connection failed: {exc}", error_class="connection_error"
            ),
            request=request_record,
        )
    except _ResponseTooLarge:
        return finish(
            Interpretation(
                Outcome.TERMINAL,
                error=f"Response larger than {MAX_RESPONSE_BYTES} bytes.",
                error_class="response_too_large",
            ),
            request=request_record,
            status=raw.status_code,
        )
    except requests.RequestException as exc:
        return finish(
            Interpretation(
                Outcome.TERMINAL, error=f"Request failed: {exc}", error_class="request_error"
            ),
            request=request_record,
        )
    response = ProviderResponse(status=raw.status_code, headers=raw.headers, body=body)
    try:
        interpretation = provider.interpret(operation, response, input, config)
    except Exception:
        # Interpreters classify every documented shape; anything else is a bug in an adapter,
        # logged with its traceback but still reported as an outcome, never raised at the worker.
        logger.exception(
            "integrations.interpret_failed provider=%s op=%s", provider.key, operation.name
        )
        interpretation = Interpretation(
            Outcome.TERMINAL,
            error=f"Unreadable {provider.name} response (HTTP {response.status}).",
            error_class="malformed_response",
        )
    return finish(
        interpretation,
        status=response.status,
        request=request_record,
        response={
            "status": response.status,
            "headers": masker.headers(raw.headers),
            "body": masker.text(excerpt(body, RECORD_BODY_BYTES)),
        },
    )
