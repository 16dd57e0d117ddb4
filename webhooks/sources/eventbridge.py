"""Shopify's Amazon EventBridge events turned back into the webhook each carries: the payload as
the body, the metadata as the headers, so that the Shopify adapter identifies and normalises it
exactly as a webhook (docs/providers/shopify-eventbridge.md).

The envelope is AWS's documented event structure, every top-level field required. Inside
``detail``, the ``metadata`` object of X-Shopify-* headers beside the ``payload`` is the shape
independent consumers agree on; Shopify's own pages show no example event, so it stays
unconfirmed by a primary source. Anything else is not taken apart: it is stored as it came and
dead-lettered as malformed, never dropped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ("QueueMessage", "eventbridge_message")

# Every event delivered to an event bus carries these (AWS EventBridge user guide, "AWS service
# event metadata", docs/providers/shopify-eventbridge.md).
ENVELOPE_FIELDS = frozenset(
    ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
)

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


def _metadata(metadata: dict) -> dict[str, str]:
    return {
        str(name): str(value)
        for name, value in metadata.items()
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
    detail = _detail(envelope)
    if detail is None:
        return QueueMessage(raw_bytes, {}, f"sqs:{message_id}")
    body = json.dumps(detail["payload"], separators=(",", ":"), ensure_ascii=False).encode()
    event_id = envelope["id"]
    fallback = f"eventbridge:{event_id}" if isinstance(event_id, str) and event_id else ""
    return QueueMessage(body, _metadata(detail["metadata"]), fallback or f"sqs:{message_id}")


def _detail(envelope) -> dict | None:
    """The ``detail`` of an EventBridge event carrying a Shopify webhook, else None."""
    if not isinstance(envelope, dict) or not envelope.keys() >= ENVELOPE_FIELDS:
        return None
    detail = envelope["detail"]
    if not isinstance(detail, dict) or "payload" not in detail:
        return None
    return detail if isinstance(detail.get("metadata"), dict) else None
