"""How the API describes itself in /api/schema/: operation ids that read as verbs
(``credentials_rotate``, not ``credentials_rotate_create``) and every error as the problem
document it is (RFC 9457, ``config.api.problems``)."""

from drf_spectacular.openapi import AutoSchema

__all__ = ("ProblemAutoSchema", "problem_responses")

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


def problem_responses(result, generator, request, public):
    """Postprocessing hook: a ``Problem`` component, and ``4XX`` / ``5XX`` problem+json answers on
    every operation (the specific ones an operation declares stay)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schema = {"$ref": "#/components/schemas/Problem"}
    problem = {"content": {"application/problem+json": {"schema": schema}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.setdefault("4XX", {"description": "Refused: see the problem.", **problem})
            responses.setdefault("5XX", {"description": "Server error.", **problem})
    return result
