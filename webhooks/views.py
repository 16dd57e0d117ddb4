"""The receiver: ``POST /webhooks/<provider>/<endpoint_id>/`` (HEAD answers 200 for Trello).

Order (DESIGN §6): size → endpoint → signature on the raw bytes → JSON → de-duplicate → persist
→ commit → 2xx. Processing happens later, from the stored row."""

import logging

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config import tracing
from config.api.problems import problem_response
from config.middleware import body_stream, reads_chunked_body
from integrations.registry import provider_registered
from webhooks import services

__all__ = ("receive",)

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024


def _read_body(stream) -> bytes | None:
    """The body, or None when it exceeds the limit. The middleware refuses a large
    Content-Length; a chunked body has none, so the limit is enforced here as it is read."""
    limit = settings.SWITCHYARD_MAX_BODY_BYTES
    body = bytearray()
    while chunk := stream.read(CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _url(request) -> str:
    """The URL the provider called, as it was given out (Trello signs it)."""
    if settings.SWITCHYARD_PUBLIC_URL:
        return settings.SWITCHYARD_PUBLIC_URL + request.get_full_path()
    return request.build_absolute_uri()


@reads_chunked_body
@csrf_exempt
@transaction.non_atomic_requests
@require_http_methods(["POST", "HEAD"])
def receive(request, provider: str, endpoint_id):
    if request.method == "HEAD":
        # Trello checks the callback URL with a bodiless HEAD before creating a webhook.
        return HttpResponse(status=200)
    # CONN_HEALTH_CHECKS would send SELECT 1 before the first query of every request, a round
    # trip per webhook. The receiver does without: on a broken connection its INSERT fails, the
    # answer is 503 (the provider delivers again), and Django drops the connection at the end of
    # the request, as it does after any database error.
    connection.health_check_done = True
    body = _read_body(body_stream(request))
    if body is None:
        limit = settings.SWITCHYARD_MAX_BODY_BYTES
        return problem_response(
            413, "payload-too-large", f"Request body exceeds the limit of {limit} bytes."
        )
    try:
        # Verify and store; a refusal marks the span failed with its class (SignatureRejected).
        # Anyone may post here: only a registered provider's key names the span's provider.
        traced = provider if provider_registered(provider) else "_unknown"
        with tracing.span("webhooks.receive", attributes={"switchyard.provider": traced}) as span:
            event, created = services.inbound_webhook_receive(
                provider=provider,
                endpoint_id=endpoint_id,
                body=body,
                headers=dict(request.headers),
                url=_url(request),
                remote_ip=request.META.get("REMOTE_ADDR") or None,
            )
            tracing.annotate(
                span, {"switchyard.event_id": event.pk, "switchyard.duplicate": not created}
            )
    except services.EndpointNotFound:
        # Also for a provider no adapter is registered for: it has no endpoints either.
        return problem_response(404, "not-found", "No active webhook endpoint at this URL.")
    except services.SignatureRejected as exc:
        return problem_response(401, "signature-invalid", str(exc))
    except DatabaseError:
        # Not stored means not acknowledged: a 5xx makes the provider deliver it again.
        logger.exception("webhooks.persist_failed provider=%s endpoint=%s", provider, endpoint_id)
        return problem_response(
            503, "unavailable", "The event could not be stored; deliver it again later."
        )
    if created:
        return JsonResponse({"id": event.pk, "status": "accepted"}, status=202)
    return JsonResponse({"id": event.pk, "status": "duplicate"}, status=200)
