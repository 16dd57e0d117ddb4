"""``X-Request-ID``: taken from the request when it is a sane id, else generated; returned on
the response and bound to every log line of the request (and to the deliveries it creates)."""

import re
import uuid
from contextvars import ContextVar

import structlog
from django.core.signals import request_finished
from django.dispatch import receiver

__all__ = ("REQUEST_ID_HEADER", "RequestIdMiddleware", "current_request_id")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX_LENGTH = 128
# Characters that cannot break a log line, a header or a query: a client's id that has others
# (or is too long) is replaced, not refused, as proxies that generate ids do.
_VALID = re.compile(rf"[A-Za-z0-9._:@+=/-]{{1,{REQUEST_ID_MAX_LENGTH}}}\Z")

_request_id: ContextVar[str | None] = ContextVar("switchyard_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


class RequestIdMiddleware:
    """Outermost middleware, so every answer (early 4xx included) carries the id. The ids stay
    bound after the chain returns, until the response is closed (``request_finished``): Django
    logs a 4xx/5xx and gunicorn its access line in between, and they should carry it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if _VALID.match(supplied) else uuid.uuid4().hex
        request.request_id = request_id
        _request_id.set(request_id)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


@receiver(request_finished, dispatch_uid="switchyard_request_id_clear")
def _request_finished(**kwargs) -> None:
    """Nothing of a request is bound to what its thread does next."""
    _request_id.set(None)
    structlog.contextvars.clear_contextvars()
