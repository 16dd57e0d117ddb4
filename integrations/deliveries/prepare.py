"""Preparing a call (when a delivery is accepted): resolve the action to a provider operation,
validate the input and route it to the customer's integration, so bad input is a 400 before
anything is queued. The ``PreparedCall`` is what a delivery stores."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.serializers.json import DjangoJSONEncoder
from rest_framework.exceptions import ValidationError

from config.api.serializers import validated
from customers.models import Customer
from integrations import selectors
from integrations.capabilities import CAPABILITIES, stages_of
from integrations.models import Integration
from integrations.registry import (
    ProviderNotRegistered,
    get_provider,
    provider_keys,
    provider_registered,
)

__all__ = ("NOT_READ", "PreparedCall", "action_prepare", "operation_provider_key")

# ``action_prepare``'s ``active_integration`` when the caller has not read it: it reads it.
NOT_READ = object()


@dataclass(frozen=True)
class PreparedCall:
    """A validated, routed call, ready to store on a delivery and send later.

    ``input`` is JSON-serialisable and already in provider terms (stage names mapped to ids);
    ``capability`` names the capability it came from (e.g. ``workflow.proceed``), else None.
    ``integration`` is the row routing loaded (for its retry settings when the delivery is
    stored); a call rebuilt from a stored delivery has only its id."""

    provider_key: str
    operation: str
    integration_id: int | None
    input: dict
    capability: str | None = None
    integration: Integration | None = field(default=None, compare=False, repr=False)


def _invalid(field_name: str, error) -> ValidationError:
    return ValidationError({field_name: error if isinstance(error, dict | list) else [error]})


def _json_safe(data: dict) -> dict:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _validated(serializer_class, data: Mapping) -> dict:
    try:
        return validated(serializer_class, dict(data))
    except ValidationError as exc:
        raise _invalid("input", exc.detail) from None


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
    try:
        translated = validated(
            operation.input_serializer, binding.translate_input(data, integration.config)
        )
    except ValidationError as exc:
        errors = exc.detail
        caller_errors = {
            binding.input_fields[name]: field_errors
            for name, field_errors in errors.items()
            if name in binding.input_fields
        }
        if caller_errors:
            raise _invalid("input", caller_errors) from None
        raise _invalid(
            "action",
            f"Integration {integration.pk} ({provider.key}) maps this input to invalid "
            f"{provider.key}.{operation.name} input: {errors}. Check its config.",
        ) from None
    return PreparedCall(
        provider_key=provider.key,
        operation=operation.name,
        integration_id=integration.pk,
        input=_json_safe(translated),
        capability=action,
        integration=integration,
    )


def operation_provider_key(action: str) -> str | None:
    """The registered provider a ``<provider>.<operation>`` action names; None for a capability
    and for anything else (which ``action_prepare`` refuses, naming the reason)."""
    if action in CAPABILITIES:
        return None
    provider_key, dot, _ = (action or "").partition(".")
    return provider_key if dot and provider_registered(provider_key) else None


def action_prepare(
    *,
    customer: Customer,
    action: str,
    input: dict,
    allow_internal: bool = False,
    active_integration: Integration | object | None = NOT_READ,
) -> PreparedCall:
    """Resolve ``action`` (a capability such as ``workflow.proceed``, or ``<provider>.<operation>``)
    for ``customer`` and validate ``input``.

    Raises ``rest_framework.exceptions.ValidationError`` naming the field: ``{"action": [...]}``
    for an unknown action, provider or operation, or a missing integration;
    ``{"input": {field: [...]}}`` for invalid input (including unknown stage names).
    ``allow_internal``: the platform itself may prepare internal operations (fan-out); callers
    of the API never may. ``active_integration``: the customer's active integration of the
    action's provider (or None), when the caller read it with the customer."""
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
    integration = active_integration
    if integration is NOT_READ:
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
        integration=integration,
    )
