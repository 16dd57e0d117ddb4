from django.conf import settings

from config.api.problems import problem_response

__all__ = ("BodySizeLimitMiddleware", "reads_chunked_body")


def reads_chunked_body(view):
    """Mark a view that reads a chunked body itself, with the size limit enforced as it reads
    (the webhook receiver); other views get 411 for one."""
    view.reads_chunked_body = True
    return view


class BodySizeLimitMiddleware:
    """Refuse oversized bodies with 413 before any view reads them (Django alone answers 400).

    Only a declared Content-Length is checked here. A chunked body declares none and Django
    reads nothing of it: a view would see an empty body and answer as if fields were missing.
    Such a request gets 411 instead, unless the view is marked ``reads_chunked_body``."""

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
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        unbounded = chunked and not request.META.get("CONTENT_LENGTH")
        if unbounded and not getattr(view_func, "reads_chunked_body", False):
            return problem_response(
                411, "length-required", "Send the body with a Content-Length header."
            )
        return None
