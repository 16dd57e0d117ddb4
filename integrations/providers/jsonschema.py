"""An operation's input as JSON Schema (draft 2020-12), rendered from the serializer that
validates it, so what ``GET /api/v1/providers/`` and the OpenAPI document publish cannot drift from
what the API accepts. ``openapi_schema`` spells the same schema for OpenAPI 3.0.

A schema here promises acceptance: where the serializer checks more than JSON Schema can say
(a GA4 parameter name, a URL's host), the schema is narrower than the validation, never wider."""

from __future__ import annotations

import copy
import re
from typing import Any

from rest_framework import fields as drf_fields
from rest_framework import serializers

from config.api.schema import NOT_BLANK_PATTERN
from integrations.providers.config import BaseConfigSerializer, BaseUrlField

__all__ = ("JSON_SCHEMA_DIALECT", "json_schema", "openapi_schema")

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# DRF trims CharFields before checking them, so a blank-refusing field needs a non-space.
NOT_BLANK = NOT_BLANK_PATTERN
BLANKS = (" ", "\t", "\n", " \n ")
# A subset of what Django's URLValidator accepts (scheme, two to four dotted labels of at most
# 62 characters under a TLD, a plain path): every URL it matches is accepted, which is what a
# schema-valid value must be.
_LABEL = r"[a-z0-9]{1,20}(?:-[a-z0-9]{1,20}){0,2}"
ACCEPTED_URL = (
    rf"^https?://{_LABEL}(?:\.{_LABEL}){{0,2}}\.[a-z]{{2,24}}(?:/[A-Za-z0-9._~-]{{0,40}}){{0,8}}$"
)
URL_MAX_LENGTH = 2048


def json_schema(serializer: serializers.Serializer | type[serializers.Serializer]) -> dict:
    """The JSON Schema of what ``serializer`` accepts, self-contained (nested serializers
    inline)."""
    if isinstance(serializer, type):
        serializer = serializer()
    return {"$schema": JSON_SCHEMA_DIALECT, **_object_schema(serializer)}


def openapi_schema(schema: dict) -> dict:
    """``schema`` as an OpenAPI 3.0 schema object: ``nullable`` instead of a ``null`` type."""
    converted = copy.deepcopy(schema)
    converted.pop("$schema", None)
    return _to_openapi(converted)


def _to_openapi(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_to_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    types = schema.get("type")
    if isinstance(types, list):
        remaining = [t for t in types if t != "null"]
        schema["type"] = remaining[0]
        schema["nullable"] = True
    if "properties" in schema:
        schema["properties"] = {
            name: _to_openapi(sub) for name, sub in schema["properties"].items()
        }
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = _to_openapi(schema[key])
    return schema


def _object_schema(serializer: serializers.Serializer) -> dict:
    properties, required = {}, []
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        properties[name] = _field_schema(field)
        if field.required:
            required.append(name)
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if isinstance(serializer, BaseConfigSerializer):
        schema["additionalProperties"] = False  # an unknown setting is refused
    if serializer.__doc__ and type(serializer).__doc__ != serializers.Serializer.__doc__:
        schema["description"] = " ".join(serializer.__doc__.split())
    return schema


def _field_schema(field: drf_fields.Field) -> dict:
    schema = _value_schema(field)
    if getattr(field, "allow_null", False) and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if field.help_text:
        schema["description"] = str(field.help_text)
    default = field.default
    if default is not drf_fields.empty and not callable(default):
        schema["default"] = default
    return schema


def _value_schema(field: drf_fields.Field) -> dict:
    """The schema of ``field``'s non-null values."""
    if isinstance(field, serializers.ListSerializer):
        return {"type": "array", "items": _field_schema(field.child)}
    if isinstance(field, serializers.Serializer):
        return _object_schema(field)
    if isinstance(field, serializers.ListField):
        return _list_schema(field)
    if isinstance(field, serializers.DictField):
        schema = {"type": "object", "additionalProperties": _field_schema(field.child)}
        if not field.allow_empty:
            schema["minProperties"] = 1
        return schema
    if isinstance(field, serializers.JSONField | drf_fields._UnvalidatedField):
        return {}
    if isinstance(field, serializers.BooleanField):
        return {"type": "boolean"}
    if isinstance(field, serializers.ChoiceField):
        return _enum_schema(list(field.choices))
    if isinstance(field, serializers.IntegerField | serializers.FloatField):
        return _number_schema(field)
    if isinstance(field, serializers.DateTimeField):
        return {"type": "string", "format": "date-time"}
    if isinstance(field, serializers.DateField):
        return {"type": "string", "format": "date"}
    if isinstance(field, serializers.UUIDField):
        return {"type": "string", "format": "uuid"}
    if isinstance(field, serializers.CharField):
        return _string_schema(field)
    # A field this module does not know yet: any value, said so, rather than a wrong type.
    return {"description": f"Validated by {type(field).__name__}."}


def _enum_schema(values: list) -> dict:
    if all(isinstance(value, str) for value in values):
        return {"type": "string", "enum": values}
    if all(isinstance(value, int) for value in values):
        return {"type": "integer", "enum": values}
    return {"enum": values}


def _list_schema(field: serializers.ListField) -> dict:
    schema = {"type": "array", "items": _field_schema(field.child)}
    minimum = field.min_length if field.min_length is not None else 0
    if not field.allow_empty:
        minimum = max(minimum, 1)
    if minimum:
        schema["minItems"] = minimum
    if field.max_length is not None:
        schema["maxItems"] = field.max_length
    return schema


def _number_schema(field) -> dict:
    schema = {"type": "integer" if isinstance(field, serializers.IntegerField) else "number"}
    if field.min_value is not None:
        schema["minimum"] = field.min_value
    if field.max_value is not None:
        schema["maximum"] = field.max_value
    return schema


def _string_schema(field: serializers.CharField) -> dict:
    schema: dict = {"type": "string"}
    pattern = _pattern(field)
    if isinstance(field, serializers.URLField | BaseUrlField):
        # The pattern alone: every URL it matches is a URI, and a "uri" format beside it would
        # ask fuzzers for values that match one and not the other, which do not exist.
        pattern = ACCEPTED_URL
        schema["maxLength"] = min(field.max_length or URL_MAX_LENGTH, URL_MAX_LENGTH)
    if not field.allow_blank:
        schema["minLength"] = max(field.min_length or 0, 1)
        if field.trim_whitespace:
            pattern = _not_blank(pattern)
    elif field.min_length:
        schema["minLength"] = field.min_length
    if field.max_length is not None and "maxLength" not in schema:
        schema["maxLength"] = field.max_length
    if pattern:
        schema["pattern"] = pattern
    return schema


def _pattern(field: serializers.CharField) -> str | None:
    for validator in field.validators:
        regex = getattr(validator, "regex", None)
        if regex is not None and not getattr(validator, "inverse_match", False):
            return _portable(regex.pattern if isinstance(regex, re.Pattern) else str(regex))
    return None


def _portable(pattern: str) -> str:
    """``pattern`` as Python's ``re`` reads it, in every dialect: Python's non-space class
    excludes more spaces than ECMA's (0x1c to 0x1f, 0x85), so it is spelled out (outside
    character classes)."""
    if "[" in pattern:
        return pattern
    return pattern.replace(r"\S", NOT_BLANK)


def _not_blank(pattern: str | None) -> str:
    """``pattern`` that also demands a non-space (what is left once DRF trims the value). A
    lookahead keeps one pattern per schema; it needs ``pattern`` anchored at the start."""
    if pattern is None:
        return NOT_BLANK
    if not any(re.search(pattern, blank) for blank in BLANKS):
        return pattern
    if not pattern.startswith("^"):
        raise ValueError(f"Cannot add a non-blank rule to an unanchored pattern {pattern!r}")
    return rf"^(?=[\s\S]*{NOT_BLANK}){pattern[1:]}"
