"""Replays: a logged delivery, its attempts and the provider's answers as a JSON fixture, so a
production failure becomes a regression test (tests/integrations/deliveries/test_replays.py).

Only masked records are exported (attempt logs never hold secrets), and header values on the
secret-header denylist are masked again in case an old row predates a denylist entry."""

from django.utils import timezone

from integrations.constants import SECRET_HEADERS
from integrations.masking import MASK
from integrations.models import Delivery

__all__ = ("REPLAY_FORMAT", "delivery_replay_export")

REPLAY_FORMAT = "switchyard.delivery-replay/1"


def _headers(headers: dict) -> dict:
    return {k: MASK if k.lower() in SECRET_HEADERS else v for k, v in (headers or {}).items()}


def delivery_replay_export(*, delivery: Delivery, name: str, description: str = "") -> dict:
    attempts = delivery.attempt_log.order_by("number")
    return {
        "format": REPLAY_FORMAT,
        "name": name,
        "description": description,
        "exported_at": timezone.now().isoformat(),
        "delivery": {
            "id": delivery.pk,
            "action": delivery.action,
            "provider": delivery.provider_key,
            "operation": delivery.operation,
            "input": delivery.input,
            "customer": {
                "slug": delivery.customer.slug,
                "region": delivery.customer.region.code,
                "tier": delivery.customer.tier,
            },
            "integration_config": delivery.integration.config if delivery.integration else None,
        },
        "attempts": [
            {
                "number": attempt.number,
                "outcome": attempt.outcome,
                "error_class": attempt.error_class,
                "request": {
                    "method": attempt.request_method,
                    "url": attempt.request_url,
                    "headers": _headers(attempt.request_headers),
                    "body": attempt.request_body,
                },
                "response": None
                if attempt.response_status is None
                else {
                    "status": attempt.response_status,
                    "headers": _headers(attempt.response_headers),
                    "body": attempt.response_body,
                },
                "retry_after": attempt.retry_after,
                "next_delay_seconds": attempt.next_delay_seconds,
            }
            for attempt in attempts
        ],
        "expected": {"status": delivery.status, "dead_reason": delivery.dead_reason},
    }
