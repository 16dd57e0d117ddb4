"""The public actions and their input as JSON Schema, from the provider registry: what
``GET /api/v1/providers/`` serves and what the OpenAPI document says a delivery's body is (a
``oneOf`` selected by ``action``). Both render the serializers ``action_prepare`` validates with,
so the published schema and the validation cannot drift. Internal operations are left out."""

import copy

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent

from integrations.providers.jsonschema import json_schema, openapi_schema
from integrations.registry import providers
from integrations.selectors import PublicAction, action_input_schema, public_actions

__all__ = (
    "ActionRequestExtension",
    "ActionValidateRequestExtension",
    "DeadLetterRetryExtension",
    "IntegrationRequestExtension",
)


def _register(auto_schema, name: str, schema: dict) -> dict:
    """A schema component this module owns (identified by its name), as a reference."""
    component = ResolvedComponent(
        name=name, type=ResolvedComponent.SCHEMA, object=f"switchyard-action:{name}", schema=schema
    )
    auto_schema.registry.register_on_missing(component)
    return component.ref


def _variant(auto_schema, base: dict, action: PublicAction) -> dict:
    """``base`` (the request's own fields) for one action: ``action`` names it, ``input`` is
    its input. A one-value enum component keeps the enum hook from renaming each action."""
    stem = action.component_stem
    action_ref = _register(
        auto_schema, f"{stem}Action", {"type": "string", "enum": [action.action]}
    )
    input_schema = openapi_schema(action_input_schema(action))
    input_schema["description"] = f"Input of {action.action}: {action.description}"
    input_ref = _register(auto_schema, f"{stem}Input", input_schema)
    variant = copy.deepcopy(base)
    variant.pop("description", None)
    variant["properties"]["action"] = action_ref
    variant["properties"]["input"] = input_ref
    if input_schema.get("required"):
        variant["required"] = sorted({*variant.get("required", ()), "input"})
    return variant


class ActionRequestExtension(OpenApiSerializerExtension):
    """A request whose ``input`` depends on its ``action`` (POST /api/v1/deliveries/ and the
    serializers built on it): a ``oneOf`` of one component per public action, discriminated by
    ``action``. Other fields the serializer declares stay in every variant."""

    target_class = "integrations.deliveries.api.serializers.DeliveryCreateSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request" or "action" not in base.get("properties", {}):
            return base
        name = auto_schema._get_serializer_name(self.target, direction, bypass_extensions=True)
        prefix = name.removesuffix("Request")
        mapping = {}
        for action in public_actions():
            variant = _variant(auto_schema, base, action)
            ref = _register(auto_schema, f"{prefix}{action.component_stem}Request", variant)
            mapping[action.action] = ref["$ref"]
        schema = {
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "action", "mapping": mapping},
        }
        if base.get("description"):
            schema["description"] = base["description"]
        return schema


class ActionValidateRequestExtension(ActionRequestExtension):
    """The same body, checked without queueing (POST /api/v1/actions/validate/)."""

    target_class = "integrations.api.serializers.ActionValidateSerializer"


class DeadLetterRetryExtension(OpenApiSerializerExtension):
    """A bulk retry names what it acts on, exactly one way (the serializer's rule): ``ids``, a
    non-empty ``filter``, or ``"all": true``; a ``oneOf`` of the three says so."""

    target_class = "integrations.deliveries.api.serializers.DeadLetterRetrySerializer"
    priority = 1  # before config.api.schema.KnownFieldsExtension, which it includes

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return base
        properties = base["properties"]
        choices = {
            "Ids": {"ids": properties["ids"]},
            "Filter": {"filter": {"allOf": [properties["filter"]], "minProperties": 1}},
            "All": {
                "all": {"type": "boolean", "enum": [True], "description": "Every dead letter."}
            },
        }
        name = auto_schema._get_serializer_name(self.target, direction, bypass_extensions=True)
        prefix = name.removesuffix("Request")
        variants = []
        for stem, chosen in choices.items():
            variant = {
                "type": "object",
                "properties": chosen,
                "required": list(chosen),
                "additionalProperties": False,
            }
            variants.append(_register(auto_schema, f"{prefix}{stem}Request", variant))
        return {"oneOf": variants, "description": base.get("description", "")}


def _stem(key: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in key.split("_") if word)


class IntegrationRequestExtension(OpenApiSerializerExtension):
    """An integration's ``config`` depends on its ``provider``: a ``oneOf`` of one component
    per registered provider, discriminated by ``provider``, each with that provider's config
    schema (rendered from the config serializer ``clean_config`` validates with). A PATCH keeps
    the plain body: it may change one field without naming the provider."""

    target_class = "integrations.api.serializers.IntegrationSerializer"

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        name = auto_schema._get_serializer_name(self.target, direction, bypass_extensions=True)
        if direction != "request" or name.startswith("Patched"):
            return base
        mapping = {}
        for provider in providers():
            stem = _stem(provider.key)
            key_schema = {"type": "string", "enum": [provider.key]}
            config = openapi_schema(json_schema(provider.config_serializer))
            variant = copy.deepcopy(base)
            variant["properties"]["provider"] = _register(
                auto_schema, f"{stem}IntegrationProvider", key_schema
            )
            variant["properties"]["config"] = _register(
                auto_schema, f"{stem}IntegrationConfig", config
            )
            if config.get("required"):
                variant["required"] = sorted({*variant.get("required", ()), "config"})
            ref = _register(auto_schema, f"Integration{stem}Request", variant)
            mapping[provider.key] = ref["$ref"]
        return {
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "provider", "mapping": mapping},
        }
