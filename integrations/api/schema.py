"""The public actions and their input as JSON Schema, from the provider registry: what
``GET /api/v1/providers/`` serves and what the OpenAPI document says a delivery's body is (a
``oneOf`` selected by ``action``). Both render the serializers ``action_prepare`` validates with,
so the published schema and the validation cannot drift. Internal operations are left out. A
credential's fields per provider and purpose come from the same registry."""

import copy
import json

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent

from config.api.schema import NOT_BLANK_PATTERN
from config.api.serializers import KnownFieldsSerializer
from credentials.models import Credential
from credentials.services import MAX_GRACE_SECONDS
from credentials.services.versions import MAX_FIELD_CHARS
from integrations.providers.jsonschema import json_schema, openapi_schema
from integrations.registry import providers
from integrations.selectors import PublicAction, action_input_schema, public_actions

__all__ = (
    "ActionRequestExtension",
    "ActionValidateRequestExtension",
    "CredentialCreateExtension",
    "CredentialRotateExtension",
    "DeadLetterRetryExtension",
    "IntegrationRequestExtension",
    "credential_fields_component",
    "register_component",
    "stem",
)


def register_component(auto_schema, name: str, schema: dict) -> dict:
    """A schema component this module owns (identified by its name), as a reference."""
    component = ResolvedComponent(
        name=name, type=ResolvedComponent.SCHEMA, object=f"switchyard-action:{name}", schema=schema
    )
    auto_schema.registry.register_on_missing(component)
    return component.ref


def _variant(auto_schema, base: dict, action: PublicAction) -> dict:
    """``base`` (the request's own fields) for one action: ``action`` names it, ``input`` is
    its input. A one-value enum component keeps the enum hook from renaming each action."""
    action_stem = action.component_stem
    action_ref = register_component(
        auto_schema, f"{action_stem}Action", {"type": "string", "enum": [action.action]}
    )
    input_schema = openapi_schema(action_input_schema(action))
    input_schema["description"] = f"Input of {action.action}: {action.description}"
    input_ref = register_component(auto_schema, f"{action_stem}Input", input_schema)
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
    # Before config.api.schema.KnownFieldsExtension: a batch item refuses unknown keys too.
    priority = 1

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request" or "action" not in base.get("properties", {}):
            return base
        target = self.target if isinstance(self.target, type) else type(self.target)
        if issubclass(target, KnownFieldsSerializer):
            base["additionalProperties"] = False
        name = auto_schema._get_serializer_name(self.target, direction, bypass_extensions=True)
        prefix = name.removesuffix("Request")
        mapping = {}
        for action in public_actions():
            variant = _variant(auto_schema, base, action)
            ref = register_component(
                auto_schema, f"{prefix}{action.component_stem}Request", variant
            )
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
            variants.append(register_component(auto_schema, f"{prefix}{stem}Request", variant))
        return {"oneOf": variants, "description": base.get("description", "")}


def stem(key: str) -> str:
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
            provider_stem = stem(provider.key)
            key_schema = {"type": "string", "enum": [provider.key]}
            config = openapi_schema(json_schema(provider.config_serializer))
            variant = copy.deepcopy(base)
            variant["properties"]["provider"] = register_component(
                auto_schema, f"{provider_stem}IntegrationProvider", key_schema
            )
            variant["properties"]["config"] = register_component(
                auto_schema, f"{provider_stem}IntegrationConfig", config
            )
            if config.get("required"):
                variant["required"] = sorted({*variant.get("required", ()), "config"})
            ref = register_component(auto_schema, f"Integration{provider_stem}Request", variant)
            mapping[provider.key] = ref["$ref"]
        return {
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "provider", "mapping": mapping},
        }


def credential_fields_component(provider: str, purpose: str) -> str:
    """The name of the component of a provider's credential fields for one purpose."""
    return f"{stem(provider)}{stem(purpose)}CredentialFields"


def _fields_schema(declared) -> dict:
    """What ``credentials.services.versions.fields_validated`` accepts: the declared fields
    only, strings, the required ones not blank (DRF trims them first)."""
    properties, required = {}, []
    for field in declared:
        schema = {"type": "string", "maxLength": MAX_FIELD_CHARS}
        if field.required:
            schema.update(minLength=1, pattern=NOT_BLANK_PATTERN)
            required.append(field.name)
        if field.help_text:
            schema["description"] = field.help_text
        properties[field.name] = schema
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _field_sets() -> dict[tuple[str, str], dict]:
    """(provider, purpose) → the schema of its fields, for every purpose a provider declares
    (owned purposes are no provider's: they are never created here)."""
    return {
        (provider.key, purpose): _fields_schema(fields)
        for provider in providers()
        for purpose, fields in provider.credential_fields.items()
    }


def _credential_fields(auto_schema) -> dict[tuple[str, str], dict]:
    """(provider, purpose) → a reference to the component of its fields."""
    return {
        pair: register_component(auto_schema, credential_fields_component(*pair), schema)
        for pair, schema in _field_sets().items()
    }


class CredentialCreateExtension(OpenApiSerializerExtension):
    """A credential's ``fields`` depend on its ``provider`` and ``purpose``, and its scope is a
    customer or else a region and/or tier (an ``oauth_client`` is never a customer's): a
    ``oneOf`` of one component per provider, purpose and scope, the fields from the registry
    ``fields_validated`` checks against."""

    target_class = "credentials.api.serializers.CredentialCreateSerializer"

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return base
        properties = base["properties"]
        shared = {name: properties[name] for name in ("label", "allow_cross_region")}
        customer = {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "pattern": "^[-a-zA-Z0-9_]+$",
            "description": "The customer (slug) this credential serves, and no other.",
        }
        scopes = {
            "": {"customer": customer},
            "Shared": {name: properties[name] for name in ("region", "tier")},
        }
        variants = []
        for (provider, purpose), fields_ref in _credential_fields(auto_schema).items():
            keys = {
                "provider": register_component(
                    auto_schema,
                    f"{stem(provider)}CredentialProvider",
                    {"type": "string", "enum": [provider]},
                ),
                "purpose": register_component(
                    auto_schema,
                    f"{stem(purpose)}CredentialPurpose",
                    {"type": "string", "enum": [purpose]},
                ),
            }
            for scope, scope_properties in scopes.items():
                if purpose == Credential.Purpose.OAUTH_CLIENT and "customer" in scope_properties:
                    continue
                variant = {
                    "type": "object",
                    "properties": {**keys, **scope_properties, **shared, "fields": fields_ref},
                    # ``purpose`` defaults to api; an unknown key may be a misplaced scope.
                    "required": sorted(
                        {"provider", "fields", *scope_properties.keys() - {"region", "tier"}}
                        | ({"purpose"} if purpose != Credential.Purpose.API else set())
                    ),
                    "additionalProperties": False,
                }
                name = f"{stem(provider)}{stem(purpose)}{scope}CredentialRequest"
                variants.append(register_component(auto_schema, name, variant))
        return {"oneOf": variants, "description": "A credential of one provider and purpose."}


class CredentialRotateExtension(OpenApiSerializerExtension):
    """A rotation's ``fields`` are those of the credential's provider and purpose (any of the
    registry's field sets, as the path decides which), and its grace is bounded as the
    service bounds it."""

    target_class = "credentials.api.serializers.CredentialRotateSerializer"

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return base
        # One reference per distinct field set (webhook signing secrets are all alike).
        refs, distinct = _credential_fields(auto_schema), {}
        for pair, schema in _field_sets().items():
            distinct.setdefault(json.dumps(schema, sort_keys=True), refs[pair])
        base["properties"]["fields"] = {
            "anyOf": list(distinct.values()),
            "description": "The fields of the credential's provider and purpose.",
        }
        base["properties"]["grace_seconds"].update(minimum=0, maximum=MAX_GRACE_SECONDS)
        return base
