"""The official Python client for Switchyard's API (``/api/v1/``) and webhooks."""

from switchyard_client.client import Client, RetryPolicy
from switchyard_client.errors import ApiError
from switchyard_client.webhooks import WebhookVerificationError, verify_webhook

__all__ = ("ApiError", "Client", "RetryPolicy", "WebhookVerificationError", "verify_webhook")
