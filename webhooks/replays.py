"""Inbound event replays: a stored event (raw body and headers, secrets stripped) as a JSON
fixture under tests/replays/, so a payload that broke processing becomes a regression test."""

from django.utils import timezone

from integrations.providers.base import BaseProvider
from integrations.registry import ProviderNotRegistered, get_provider
from webhooks.models import InboundEvent

__all__ = ("EVENT_REPLAY_FORMAT", "inbound_event_replay_export")

EVENT_REPLAY_FORMAT = "switchyard.inbound-event-replay/1"


def inbound_event_replay_export(*, event: InboundEvent, name: str, description: str = "") -> dict:
    # Stored headers are the provider's allowlist; applying it again covers rows stored before it.
    try:
        provider = get_provider(event.provider)
    except ProviderNotRegistered:
        provider = BaseProvider()
    headers = provider.stored_headers(event.headers)
    return {
        "format": EVENT_REPLAY_FORMAT,
        "name": name,
        "description": description,
        "exported_at": timezone.now().isoformat(),
        "event": {
            "id": event.pk,
            "provider": event.provider,
            "external_id": event.external_id,
            "type": event.type,
            "status": event.status,
            "error": event.error,
            "headers": headers,
            "body": bytes(event.body).decode("utf-8", errors="replace"),
        },
    }
