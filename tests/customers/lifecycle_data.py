"""Rows of every kind a customer leaves behind, planted with a marker in each field that may
hold its data, for the retention and erasure tests."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from credentials.services import credential_create
from customers.services import api_key_create
from integrations.deliveries.models import SEND_ACTION, Delivery, DeliveryAttempt
from integrations.services import integration_create
from webhooks.models import InboundEvent
from webhooks.services import endpoint_create, subscription_create

__all__ = ("attempt_add", "delivery_add", "event_add", "plant")


def delivery_add(customer, *, status="succeeded", age_days=0, marker="m", **fields) -> Delivery:
    finished = status in ("succeeded", "dead", "cancelled")
    at = timezone.now() - timedelta(days=age_days)
    values = {
        "customer": customer,
        "action": "http.request",
        "provider_key": "http",
        "operation": "request",
        "input": {"path": f"/orders/{marker}", "body": {"note": marker}},
        "attempt_limit": 10,
        "status": status,
        "finished_at": at if finished else None,
        "result": {"echo": marker} if status == "succeeded" else None,
        "last_error": f"refused {marker}" if status == "dead" else "",
        "dead_reason": "non_retryable" if status == "dead" else "",
        **fields,
    }
    delivery = Delivery.objects.create(**values)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=at)
    return delivery


def attempt_add(delivery: Delivery, *, number=1, marker="m") -> DeliveryAttempt:
    return DeliveryAttempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=timezone.now(),
        outcome="success",
        error=f"error quoting {marker}",
        request_method="POST",
        request_url=f"https://api.example.com/orders?q={marker}",
        request_headers={"X-Note": marker},
        request_body=json.dumps({"note": marker}),
        response_status=200,
        response_headers={"X-Echo": marker},
        response_body=json.dumps({"echo": marker}),
    )


def event_add(endpoint, *, status="processed", age_days=0, marker="m") -> InboundEvent:
    event = InboundEvent.objects.create(
        endpoint=endpoint,
        provider=endpoint.provider,
        external_id=f"evt-{InboundEvent.objects.count() + 1}",
        type="trello.card.moved",
        status=status,
        body=json.dumps({"card": marker}).encode(),
        headers={"X-Note": marker},
        remote_ip="203.0.113.7",
        envelope={"data": {"card": marker}},
        error=f"failed on {marker}" if status == "dead" else "",
        attempt_limit=10,
    )
    at = timezone.now() - timedelta(days=age_days)
    InboundEvent.objects.filter(pk=event.pk).update(received_at=at, processed_at=at)
    return event


def plant(customer, *, secret: str, marker: str) -> dict:
    """A customer's credentials (``secret`` in each), integration, API key, endpoint, event,
    subscription, deliveries and attempts (``marker`` in every field that carries data)."""
    credential = credential_create(
        provider="http", purpose="api", customer=customer, fields={"token": secret}
    )
    signing = credential_create(
        provider="trello",
        purpose="webhook_signing",
        customer=customer,
        fields={"secret": f"{secret}-signing"},
    )
    integration = integration_create(
        customer=customer,
        provider_key="http",
        config={"base_url": f"https://{marker}.example.com/api"},
    )
    key, _ = api_key_create(name=f"{customer.slug}-app", customers=[customer])
    endpoint = endpoint_create(customer=customer, provider="trello", credential=signing)
    subscription, subscription_secret = subscription_create(
        url=f"https://hooks.example.com/{marker}", event_types=["*"], customer=customer
    )
    event = event_add(endpoint, marker=marker)
    delivery = delivery_add(customer, marker=marker, idempotency_key=f"key-{marker}")
    attempt_add(delivery, marker=marker)
    dead = delivery_add(customer, status="dead", marker=marker)
    attempt_add(dead, marker=marker)
    pending = delivery_add(customer, status="pending", marker=marker)
    fan_out = delivery_add(
        customer,
        action=SEND_ACTION,
        provider_key="standard_webhooks",
        operation="send",
        input={"subscription": subscription.pk, "event": event.pk},
        marker=marker,
    )
    return {
        "credential": credential,
        "signing": signing,
        "integration": integration,
        "api_key": key,
        "endpoint": endpoint,
        "subscription": subscription,
        "subscription_secret": subscription_secret,
        "event": event,
        "deliveries": [delivery, dead, pending, fan_out],
    }
