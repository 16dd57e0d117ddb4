from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import Http404, HttpResponseBadRequest

from config import tracing
from config.api.problems import MACHINE_PREFIXES, problem_response
from config.json_limits import NUL, nul_escaped

__all__ = (
    "BodySizeLimitMiddleware",
    "NulRefusedMiddleware",
    "TracingMiddleware",
    "body_stream",
    "reads_chunked_body",
)


def _chunked(meta) -> bool:
    """A body without Content-Length (chunked): Django reads nothing of it."""
    return "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get(
        "CONTENT_LENGTH"
    )


def reads_chunked_body(view):
    """Mark a view that reads a chunked body itself through ``body_stream``, enforcing the size
    limit as it reads (the webhook receiver); other views get 411 for one."""
    view.reads_chunked_body = True
    return view


def body_stream(request):
    """Where a ``reads_chunked_body`` view reads its body from: the server's de-chunked input
    for a chunked body (the middleware has checked that the server ends it where the body ends,
    ``wsgi.input_terminated``, as gunicorn does), else the request."""
    return request.META["wsgi.input"] if _chunked(request.META) else request


class BodySizeLimitMiddleware:
    """Refuse oversized bodies with 413 before any view reads them (Django alone answers 400).

    Only a declared Content-Length is checked here. A chunked body declares none and Django
    reads nothing of it: a view would see an empty body and answer as if fields were missing.
    Such a request gets 411 instead, unless the view is marked ``reads_chunked_body`` and the
    server says where the body ends (``wsgi.input_terminated``; Django's runserver does not)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(400, "bad-request", "Content-Length is not a number.")
        limit = settings.SWITCHYARD_MAX_BODY_BYTES
        if length > limit:
            return problem_response(
                413,
                "payload-too-large",
                f"Request body is {length} bytes; the limit is {limit} bytes.",
            )
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not _chunked(request.META):
            return None
        readable = getattr(view_func, "reads_chunked_body", False) and request.META.get(
            "wsgi.input_terminated"
        )
        if readable:
            return None
        return problem_response(
            411, "length-required", "Send the body with a Content-Length header."
        )


class NulRefusedMiddleware:
    """A NUL character in the path (404, as for any other path no route has), the query string
    or a header (400 naming the parameter or header). PostgreSQL refuses to compare text
    holding one, so a lookup that finds nothing on SQLite would be a 500 there."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if NUL in request.path:
            raise Http404("No route has a NUL character.")
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or NUL in query:  # the cheap look first; most requests stop here
            names = [
                name
                for name, values in request.GET.lists()
                if NUL in name or any(NUL in value for value in values)
            ]
            if names:
                return _nul_refused(request, "query parameters", names)
        headers = [name for name, value in request.headers.items() if NUL in value]
        if headers:
            return _nul_refused(request, "headers", headers)
        return self.get_response(request)


def _nul_refused(request, where: str, names: list[str]):
    names = sorted(nul_escaped(name) for name in names)
    detail = f"NUL (\\u0000) characters are not allowed in {where}: {', '.join(names)}."
    if not request.path.startswith(MACHINE_PREFIXES):
        return HttpResponseBadRequest(detail)
    errors = {name: ["NUL (\\u0000) characters are not allowed."] for name in names}
    return problem_response(400, "validation-error", detail, errors)


class TracingMiddleware:
    """The server span of each request, continuing a caller's W3C ``traceparent``. While tracing
    is off it is not in the chain at all (MiddlewareNotUsed): a request pays nothing for it."""

    def __init__(self, get_response):
        if not tracing.enabled():
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        with tracing.span(
            request.method,
            kind=tracing.SpanKind.SERVER,
            parents=[request.META.get("HTTP_TRACEPARENT")],
        ) as current:
            response = self.get_response(request)
            match = request.resolver_match
            tracing.server_span_finish(
                current,
                method=request.method,
                route=match.route if match else "",
                status=response.status_code,
                request_id=getattr(request, "request_id", None),
            )
        return response
