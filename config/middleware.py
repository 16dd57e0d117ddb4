from django.conf import settings

from config.api.problems import problem_response

__all__ = ("BodySizeLimitMiddleware",)


class BodySizeLimitMiddleware:
    """Refuse oversized bodies with 413 before any view reads them (Django alone answers 400).

    Only a declared Content-Length is checked here. A chunked body declares none and Django
    reads nothing of it (an empty body); the webhook receiver reads it from the server's
    de-chunked input and enforces the same limit as it reads (``webhooks/views.py``)."""

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
