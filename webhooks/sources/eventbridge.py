"""Shopify's Amazon EventBridge envelope (docs/providers/shopify-eventbridge.md: the shape is
what independent consumers agree on, not confirmed by Shopify's own pages) turned back into the
webhook it carries: the payload as the body, the metadata as the headers, so that the Shopify
adapter identifies and normalises it exactly as a webhook."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ("QueueMessage", "eventbridge_message")

# Metadata keys kept as headers: what the Shopify adapter reads and operators need. The HMAC is
# left out: nothing verifies it on this path, and it is a signature, never stored.
METADATA_PREFIXES = ("x-shopify-",)
METADATA_NAMES = {"content-type"}
HMAC_HEADER = "x-shopify-hmac-sha256"


@dataclass(frozen=True)
class QueueMessage:
    """One message as the store path takes it: body, headers, and the transport's own id (the
    event's id when the provider's cannot be read)."""

    body: bytes
    headers: dict = field(default_factory=dict)
    fallback_id: str = ""


def _metadata(detail: dict) -> dict[str, str]:
    source = detail.get("metadata")
    if not isinstance(source, dict):
        source = detail  # an older spelling puts the X-Shopify-* keys beside the payload
    return {
        str(name): str(value)
        for name, value in source.items()
        if isinstance(value, str | int)
        and str(name).lower() != HMAC_HEADER
        and (str(name).lower().startswith(METADATA_PREFIXES) or str(name).lower() in METADATA_NAMES)
    }


def eventbridge_message(raw: str | bytes, message_id: str) -> QueueMessage:
    """The webhook inside one SQS message body. A body that is not such an envelope is passed on
    as it came, identified by ``message_id``: stored and dead-lettered as malformed by the store
    path, never dropped."""
    raw_bytes = raw.encode() if isinstance(raw, str) else raw
    try:
        envelope = json.loads(raw_bytes)
    except (ValueError, RecursionError):
        return QueueMessage(raw_bytes, {}, f"sqs:{message_id}")
    detail = envelope.get("detail") if isinstance(envelope, dict) else None
    if not isinstance(detail, dict) or "payload" not in detail:
        return QueueMessage(raw_bytes, {}, f"sqs:{message_id}")
    body = json.dumps(detail["payload"], separators=(",", ":"), ensure_ascii=False).encode()
    event_id = envelope.get("id")
    fallback = f"eventbridge:{event_id}" if isinstance(event_id, str) and event_id else ""
    return QueueMessage(body, _metadata(detail), fallback or f"sqs:{message_id}")
