"""How the API describes itself in /api/schema/: operation ids that read as verbs
(``credentials_rotate``, not ``credentials_rotate_create``), every error as the problem
document it is (RFC 9457, ``config.api.problems``), filters that name the values they take, and
the ``Idempotency-Key`` header where an operation honours it. Apps describe their own bodies
(``integrations.api.schema``: a delivery's input per action)."""

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema

__all__ = (
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "NOT_BLANK_PATTERN",
    "KnownFieldsExtension",
    "ProblemAutoSchema",
    "TrimmedCharFieldExtension",
    "enum_filters",
    "idempotency_key_headers",
    "problem_responses",
    "request_bodies_required",
)

# A character Python's str.strip() keeps, in a class every regex dialect reads alike: DRF trims
# a CharField before it refuses a blank one, so a value needs one of these to be accepted.
NOT_BLANK_PATTERN = r"[^\s\x1c-\x1f\x85]"

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# The deliveries service refuses longer keys (tests/config/test_openapi.py keeps them equal).
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# Printable ASCII without spaces at either end: what every HTTP stack passes on unchanged.
IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH,
    "pattern": "^[!-~]([ -~]*[!-~])?$",
}
IDEMPOTENCY_KEY_DESCRIPTION = (
    "One key per logical call (e.g. a UUID), honoured for 48 h by default and scoped to the API "
    "key: the same key and body return the original answer with 200 and "
    "`Idempotent-Replayed: true`; the same key with another body is a 422; while the first "
    "request is still being created, a 409."
)
REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this answer replays the call first made with the key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

STANDARD_ACTIONS = {"list", "create", "retrieve", "update", "partial_update", "destroy"}
# drf-spectacular names an operation after its path and the standard action its method maps to.
METHOD_SUFFIXES = ("_create", "_retrieve", "_list", "_partial_update", "_update", "_destroy")

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An error (RFC 9457). `errors` names each offending field.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
    },
    "required": ["type", "title", "status", "detail"],
}


class ProblemAutoSchema(AutoSchema):
    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        action = getattr(self.view, "action", None)
        if action and action not in STANDARD_ACTIONS:
            for suffix in METHOD_SUFFIXES:
                if operation_id.endswith(suffix):
                    return operation_id.removesuffix(suffix)
        return operation_id


class KnownFieldsExtension(OpenApiSerializerExtension):
    """A body that refuses keys it does not know (``KnownFieldsSerializer``) says so: a schema
    that allowed them would promise what the API refuses."""

    target_class = "config.api.serializers.KnownFieldsSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


class TrimmedCharFieldExtension(OpenApiSerializerFieldExtension):
    """A request string DRF trims and refuses when blank needs a non-space character: say so
    where the field has no pattern or format of its own that already does."""

    target_class = "rest_framework.fields.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        plain = schema.get("type") == "string" and not {"pattern", "format", "enum"} & set(schema)
        # A regex validator (a slug, a code) gives the pattern drf-spectacular adds after this.
        regex = any(getattr(validator, "regex", None) for validator in field.validators)
        trimmed = field.trim_whitespace and not field.allow_blank
        if direction == "request" and plain and not regex and trimmed:
            schema["pattern"] = NOT_BLANK_PATTERN
        return schema


def problem_responses(result, generator, request, public):
    """Postprocessing hook: a ``Problem`` component, and ``4XX`` / ``5XX`` problem+json answers on
    every operation (the specific ones an operation declares stay)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schema = {"$ref": "#/components/schemas/Problem"}
    problem = {"content": {"application/problem+json": {"schema": schema}}}
    for _path, _method, operation in _operations(result):
        responses = operation["responses"]
        responses.setdefault("4XX", {"description": "Refused: see the problem.", **problem})
        responses.setdefault("5XX", {"description": "Server error.", **problem})
    return result


def _operations(result):
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def idempotency_key_headers(result, generator, request, public):
    """Postprocessing hook: every operation that declares an ``Idempotency-Key`` header says
    what a key may be and what it does, and marks the replayed answer's header."""
    for _path, _method, operation in _operations(result):
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "header" and parameter["name"] == IDEMPOTENCY_KEY_HEADER:
                parameter["schema"] = dict(IDEMPOTENCY_KEY_SCHEMA)
                parameter["description"] = IDEMPOTENCY_KEY_DESCRIPTION
                replayed = operation["responses"].get("200")
                if replayed is not None:
                    replayed.setdefault("headers", {}).update(REPLAYED_HEADER)
    return result


def _listed_properties(operation: dict, schemas: dict) -> dict:
    """The properties of the items an operation lists (a page's ``results``), else {}."""
    content = operation["responses"].get("200", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    page = schemas.get(ref.rpartition("/")[2], {})
    item_ref = page.get("properties", {}).get("results", {}).get("items", {}).get("$ref", "")
    return schemas.get(item_ref.rpartition("/")[2], {}).get("properties", {})


def _enum_ref(schema: dict, schemas: dict) -> dict | None:
    """The enum component a property takes its values from (directly, or through the
    ``allOf`` / ``oneOf`` drf-spectacular wraps it in for defaults and blanks)."""
    candidates = [schema, *schema.get("allOf", []), *schema.get("oneOf", [])]
    for candidate in candidates:
        name = candidate.get("$ref", "").rpartition("/")[2]
        if name and name not in ("BlankEnum", "NullEnum") and "enum" in schemas.get(name, {}):
            return {"$ref": candidate["$ref"]}
    return None


def enum_filters(result, generator, request, public):
    """Postprocessing hook (after the enum hook): a list's query filter named after a property
    of its items that is an enum (``status``, ``dead_reason``, ``tier``) takes that enum."""
    schemas = result.get("components", {}).get("schemas", {})
    for _path, method, operation in _operations(result):
        if method != "get":
            continue
        properties = _listed_properties(operation, schemas)
        for parameter in operation.get("parameters", []):
            if parameter.get("in") != "query" or parameter["name"] not in properties:
                continue
            enum = _enum_ref(properties[parameter["name"]], schemas)
            if enum is not None and "enum" not in parameter.get("schema", {}):
                parameter["schema"] = enum
    return result


def _component(schema: dict, schemas: dict) -> dict:
    return schemas.get(schema.get("$ref", "").rpartition("/")[2], schema)


def request_bodies_required(result, generator, request, public):
    """Postprocessing hook: a body that is one of several variants (a delivery per action) is
    required when every variant has required fields, as drf-spectacular marks a plain one."""
    schemas = result.get("components", {}).get("schemas", {})
    for _path, _method, operation in _operations(result):
        body = operation.get("requestBody")
        if body is None or body.get("required"):
            continue
        schema = body.get("content", {}).get("application/json", {}).get("schema", {})
        variants = _component(schema, schemas).get("oneOf")
        if variants and all(_component(v, schemas).get("required") for v in variants):
            body["required"] = True
    return result
