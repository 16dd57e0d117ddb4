"""Verifying a Switchyard subscription's webhook (Standard Webhooks: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature``), with every secret the subscriber holds during a
rotation."""

import json
from collections.abc import Iterable, Mapping

from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as _LibraryError

__all__ = ("WebhookVerificationError", "verify_webhook")


class WebhookVerificationError(Exception):
    """The signature, the timestamp or the body did not verify: answer 400 and drop it."""


def verify_webhook(secret: str | Iterable[str], headers: Mapping[str, str], body: bytes) -> dict:
    """The event (``{"id", "type", "timestamp", "data"}``) when ``body`` carries a valid
    signature by ``secret`` (or any of several, while a rotation's grace period lasts) within
    five minutes of now; raises ``WebhookVerificationError`` otherwise. Pass the raw body bytes,
    not re-serialised JSON."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    for candidate in secrets:
        try:
            Webhook(candidate).verify(body, lowered, json_parse=False)
        except (_LibraryError, ValueError):  # a wrong signature, or a secret that is not base64
            continue
        try:
            return json.loads(body)
        except ValueError as exc:
            raise WebhookVerificationError("The body is not JSON.") from exc
    raise WebhookVerificationError("No valid signature for the given secret(s).")
