"""Errors as RFC 9457 ``application/problem+json``: ``type``, ``title``, ``status``, ``detail``,
and ``errors`` naming each offending field."""

import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.views import exception_handler

__all__ = (
    "MACHINE_PREFIXES",
    "ProblemConflict",
    "problem_body",
    "problem_exception_handler",
    "problem_response",
)

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://switchyard.dev/problems/"
# Paths that machines call: their errors are problem documents, not HTML pages.
MACHINE_PREFIXES = ("/api/", "/webhooks/")


class ProblemConflict(exceptions.APIException):
    status_code = 409
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


def _problem_body(status: int, code: str, detail: str, errors: dict | None = None) -> dict:
    body = {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_response(
    status: int, code: str, detail: str, errors: dict | None = None
) -> JsonResponse:
    """A problem document for plain Django views (webhook receivers, health checks)."""
    return JsonResponse(
        _problem_body(status, code, detail, errors),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def _first_message(errors) -> str:
    if isinstance(errors, dict):
        for field, value in errors.items():
            return f"{field}: {_first_message(value)}"
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


def problem_exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # A service's full_clean() rejected the input: same 400 as a serializer would give.
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(detail)
    response = exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 handler reports it
    response.data = problem_body(exc, status=response.status_code)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_body(exc: exceptions.APIException, *, status: int | None = None) -> dict:
    """The problem document for ``exc``: an error response's body, or one item's in a batch."""
    status = status or exc.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        detail = f"Invalid input. {_first_message(errors)}"
        code = "validation-error"
    else:
        errors = None
        detail = str(exc.detail) if hasattr(exc, "detail") else str(exc)
        code = getattr(exc, "default_code", "error")
        if hasattr(exc.detail, "code") and exc.detail.code:
            code = exc.detail.code
    return _problem_body(status, str(code), detail, errors)
