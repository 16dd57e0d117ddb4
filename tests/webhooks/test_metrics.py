"""/metrics for webhooks: rejected signatures per provider, the inbound log by status, and the
events due for processing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.integrations.providers.helpers import fixture_bytes
from tests.webhooks.conftest import FIXTURES, SERVER, as_meta, signed_headers
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db


def _scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def _receive(client, endpoint, msg_id: str) -> InboundEvent:
    """Accept one event without a relay pass: it stays received and due."""
    body = fixture_bytes(endpoint.provider, FIXTURES[endpoint.provider][0])
    headers = signed_headers(endpoint.provider, body, SERVER + endpoint.path, msg_id=msg_id)
    response = client.post(
        endpoint.path, data=body, content_type="application/json", **as_meta(headers)
    )
    assert response.status_code == 202, response.content
    return InboundEvent.objects.get(pk=response.json()["id"])


def test_rejected_signatures_are_summed_per_provider(client, make_endpoint, post_webhook, globex):
    shopify = make_endpoint("shopify")
    other_shopify = make_endpoint("shopify", customer=globex)
    stripe = make_endpoint("stripe")
    make_endpoint("trello")
    for endpoint in (shopify, shopify, other_shopify, stripe):
        assert post_webhook(endpoint, headers={}).status_code == 401  # unsigned
    text = _scrape(client)
    assert 'switchyard_webhook_signatures_rejected{provider="shopify"} 3.0' in text
    assert 'switchyard_webhook_signatures_rejected{provider="stripe"} 1.0' in text
    assert 'switchyard_webhook_signatures_rejected{provider="trello"} 0.0' in text
    assert "running total" in text


def test_inbound_events_by_status_and_due(client, make_endpoint, post_webhook):
    assert post_webhook(make_endpoint("shopify")).status_code == 202  # relayed: processed
    endpoint = make_endpoint("standard_webhooks")
    _receive(client, endpoint, "msg_received")
    now = timezone.now()
    for msg_id, status, next_attempt_at in [
        ("msg_retry_due", InboundEvent.Status.FAILED, now - timedelta(seconds=5)),
        ("msg_retry_later", InboundEvent.Status.FAILED, now + timedelta(hours=1)),
        ("msg_dead", InboundEvent.Status.DEAD, None),
    ]:
        event = _receive(client, endpoint, msg_id)
        InboundEvent.objects.filter(pk=event.pk).update(
            status=status, next_attempt_at=next_attempt_at
        )
    text = _scrape(client)
    assert 'switchyard_inbound_events{status="received"} 1.0' in text
    assert 'switchyard_inbound_events{status="processed"} 1.0' in text
    assert 'switchyard_inbound_events{status="failed"} 2.0' in text
    assert 'switchyard_inbound_events{status="dead"} 1.0' in text
    assert 'switchyard_inbound_events{status="ignored"} 0.0' in text
    assert "switchyard_inbound_events_due 2.0" in text
