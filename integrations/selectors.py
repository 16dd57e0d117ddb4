"""Reads for integrations and the provider catalogue."""

import copy
from dataclasses import dataclass
from functools import cache

from django.db import DEFAULT_DB_ALIAS
from django.db.models import FilteredRelation, Q, QuerySet
from rest_framework import serializers

from config.prepared import PreparedRead
from customers.models import ApiKey, Customer
from customers.selectors import customers_limited_to_key, customers_visible_to
from integrations.capabilities import CAPABILITIES
from integrations.models import Integration
from integrations.providers.base import BaseProvider
from integrations.providers.jsonschema import json_schema
from integrations.providers.types import Operation
from integrations.registry import get_provider, provider_keys, providers

__all__ = (
    "PublicAction",
    "action_input_schema",
    "customer_with_active_integration",
    "integration_active_get",
    "integration_get",
    "integration_list",
    "integrations_serving",
    "provider_catalogue",
    "public_actions",
)


def integration_list(
    *, api_key: ApiKey | None, filters: dict | None = None
) -> QuerySet[Integration]:
    integrations = Integration.objects.select_related("customer", "customer__region").filter(
        customer__in=customers_visible_to(api_key)
    )
    filters = filters or {}
    if customer := filters.get("customer"):
        integrations = integrations.filter(customer__slug=customer)
    if provider := filters.get("provider"):
        integrations = integrations.filter(provider_key=provider)
    if (active := filters.get("active")) is not None:
        integrations = integrations.filter(active=active)
    return integrations


def integration_get(*, api_key: ApiKey | None, integration_id: int) -> Integration | None:
    return integration_list(api_key=api_key).filter(pk=integration_id).first()


_ACTIVE_INTEGRATION = PreparedRead(
    lambda customer_id, provider_key: Integration.objects.filter(
        customer=customer_id, provider_key=provider_key, active=True
    ).order_by()
)


def integration_active_get(*, customer: Customer, provider_key: str) -> Integration | None:
    # At most one: integration_one_active_per_customer_provider.
    found = _ACTIVE_INTEGRATION.objects(customer_id=customer.pk, provider_key=provider_key)
    return found[0] if found else None


_CUSTOMER_COLUMNS = [f.attname for f in Customer._meta.concrete_fields]
_INTEGRATION_COLUMNS = [f.attname for f in Integration._meta.concrete_fields]


def _with_active_integration(customers: QuerySet[Customer], provider_key: str) -> QuerySet:
    """Each customer's row beside its active integration of ``provider_key`` (NULLs if none)."""
    live = FilteredRelation(
        "integrations",
        condition=Q(integrations__provider_key=provider_key, integrations__active=True),
    )
    return (
        customers.annotate(live=live)
        .order_by()
        .values_list(*_CUSTOMER_COLUMNS, *(f"live__{name}" for name in _INTEGRATION_COLUMNS))
    )


_CUSTOMER_WITH_INTEGRATION = PreparedRead(
    lambda slug, provider_key: _with_active_integration(
        Customer.objects.filter(slug=slug), provider_key
    )
)
_CUSTOMER_WITH_INTEGRATION_FOR_LIMITED_KEY = PreparedRead(
    lambda slug, provider_key, api_key_id: _with_active_integration(
        customers_limited_to_key(Customer.objects.filter(slug=slug), api_key_id), provider_key
    )
)


def customer_with_active_integration(
    *, api_key: ApiKey | None, slug: str, provider_key: str
) -> tuple[Customer | None, Integration | None]:
    """``customer_by_slug`` (the same restriction) and that customer's active integration of
    ``provider_key``, in one query: the accept path's two reads as one round trip."""
    if api_key is not None and api_key.customer_limited:
        rows = _CUSTOMER_WITH_INTEGRATION_FOR_LIMITED_KEY.rows(
            slug=slug, provider_key=provider_key, api_key_id=api_key.pk
        )
    else:
        rows = _CUSTOMER_WITH_INTEGRATION.rows(slug=slug, provider_key=provider_key)
    if not rows:
        return None, None
    row, split = rows[0], len(_CUSTOMER_COLUMNS)
    customer = Customer.from_db(DEFAULT_DB_ALIAS, _CUSTOMER_COLUMNS, row[:split])
    if row[split] is None:  # no active integration: the LEFT JOIN's NULLs
        return customer, None
    return customer, Integration.from_db(DEFAULT_DB_ALIAS, _INTEGRATION_COLUMNS, row[split:])


def integrations_serving(*, customer: Customer, capability: str) -> list[Integration]:
    """The customer's active integrations whose provider serves ``capability``."""
    active = Integration.objects.filter(
        customer=customer, active=True, provider_key__in=provider_keys()
    ).order_by("created_at")
    return [i for i in active if capability in get_provider(i.provider_key).capabilities]


# -- catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicAction:
    """An ``action`` a caller may name: a capability or ``<provider>.<operation>``."""

    action: str
    description: str
    input_serializer: type[serializers.Serializer]

    @property
    def component_stem(self) -> str:
        """``trello.move_card`` → ``TrelloMoveCard``: names its schema components."""
        words = self.action.replace(".", "_").split("_")
        return "".join(word[:1].upper() + word[1:] for word in words if word)


@cache
def public_actions() -> tuple[PublicAction, ...]:
    """Capabilities first, then every provider's operations the API accepts."""
    actions = [
        PublicAction(c.name, c.description, c.input_serializer) for c in CAPABILITIES.values()
    ]
    for provider in providers():
        actions += [
            PublicAction(f"{provider.key}.{op.name}", op.description, op.input_serializer)
            for op in provider.operations.values()
            if not op.internal
        ]
    return tuple(actions)


@cache
def _input_schema(serializer_class: type[serializers.Serializer]) -> dict:
    return json_schema(serializer_class)


def action_input_schema(action: PublicAction) -> dict:
    """The JSON Schema of ``action``'s input (a copy: callers may change it)."""
    return copy.deepcopy(_input_schema(action.input_serializer))


_FIELD_TYPES = {
    "BooleanField": "boolean",
    "IntegerField": "integer",
    "FloatField": "number",
    "DecimalField": "number",
    "ListField": "array",
    "DictField": "object",
    "JSONField": "any",
}


def _field_schema(field) -> dict:
    """A JSON-schema-ish description of one DRF field."""
    if isinstance(field, serializers.Serializer):
        schema = {"type": "object", "properties": _serializer_schema(field)}
    elif isinstance(field, serializers.ListSerializer):
        schema = {"type": "array", "items": _field_schema(field.child)}
    else:
        schema = {"type": _FIELD_TYPES.get(type(field).__name__, "string")}
        if isinstance(field, serializers.ListField):
            schema["items"] = _field_schema(field.child)
            for attr, key in (("min_length", "minItems"), ("max_length", "maxItems")):
                if getattr(field, attr, None) is not None:
                    schema[key] = getattr(field, attr)
        if isinstance(field, serializers.ChoiceField):
            schema["enum"] = list(field.choices)
        if isinstance(field, serializers.RegexField):
            schema["pattern"] = field.validators[-1].regex.pattern
        if isinstance(field, serializers.CharField) and field.max_length is not None:
            schema["maxLength"] = field.max_length
    schema["required"] = bool(field.required)
    if field.allow_null:
        schema["nullable"] = True
    if field.help_text:
        schema["description"] = str(field.help_text)
    return schema


def _serializer_schema(serializer) -> dict:
    return {name: _field_schema(field) for name, field in serializer.fields.items()}


def _operation_entry(provider: BaseProvider, operation: Operation) -> dict:
    return {
        "name": operation.name,
        "action": f"{provider.key}.{operation.name}",
        "description": operation.description,
        "input": _serializer_schema(operation.input_serializer()),
        # The same JSON Schema the OpenAPI document gives this action's input.
        "input_schema": copy.deepcopy(_input_schema(operation.input_serializer)),
    }


def provider_catalogue() -> dict:
    """Everything ``GET /api/v1/providers/`` shows, generated from the registry."""
    entries = []
    for provider in providers():
        entries.append(
            {
                "key": provider.key,
                "name": provider.name,
                "description": provider.description,
                "requires_integration": provider.requires_integration,
                "verifies_webhooks": provider.verifies_webhooks,
                "default_base_url": provider.default_base_url,
                "regional_base_urls": provider.regional_base_urls,
                "default_rate_limit": provider.default_rate_limit,
                "default_retry": provider.default_retry,
                "credential_fields": {
                    purpose: [
                        {
                            "name": f.name,
                            "required": f.required,
                            "secret": f.secret,
                            "help_text": f.help_text,
                        }
                        for f in fields
                    ]
                    for purpose, fields in provider.credential_fields.items()
                },
                # Internal operations (fan-out) are the platform's own; callers cannot use them.
                "operations": [
                    _operation_entry(provider, op)
                    for op in provider.operations.values()
                    if not op.internal
                ],
                "capabilities": [
                    {"name": name, "operation": binding.operation}
                    for name, binding in provider.capabilities.items()
                ],
                "config": _serializer_schema(provider.config_serializer()),
                "config_schema": copy.deepcopy(_input_schema(provider.config_serializer)),
            }
        )
    capabilities = [
        {
            "name": capability.name,
            "description": capability.description,
            "input": _serializer_schema(capability.input_serializer()),
            "input_schema": copy.deepcopy(_input_schema(capability.input_serializer)),
            "providers": [p.key for p in providers() if capability.name in p.capabilities],
        }
        for capability in CAPABILITIES.values()
    ]
    return {"providers": entries, "capabilities": capabilities}
