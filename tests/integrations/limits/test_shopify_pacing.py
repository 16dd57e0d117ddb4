"""Shopify pacing from its leaky bucket: ``X-Shopify-Shop-Api-Call-Limit`` (used/size) past
three quarters of the bucket holds the shop's next sends, in every worker, until it has leaked
back. The shop is mocked with ``responses``."""

import pytest
import responses
from django.utils import timezone

from credentials.services import credential_create
from integrations.deliveries import services
from integrations.models import Delivery
from integrations.providers.shopify import ShopifyProvider
from integrations.services import integration_create

pytestmark = pytest.mark.django_db

ORDER_URL = "https://fake.myshopify.com/admin/api/2025-07/orders/{}.json"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1/40", 0), ("30/40", 0), ("32/40", 1.0), ("40/40", 5.0), ("390/400", 45.0), ("", 0)],
)
def test_pace_from_the_call_limit_header(header, seconds):
    headers = {"X-Shopify-Shop-Api-Call-Limit": header} if header else {}
    assert ShopifyProvider().pace_seconds(headers, 2.0) == pytest.approx(seconds)


@pytest.fixture
def shop(acme):
    integration_create(
        customer=acme,
        provider_key="shopify",
        config={"shop": "fake", "api_version": "2025-07"},
    )
    credential_create(
        provider="shopify", purpose="api", customer=acme, fields={"access_token": "t"}
    )


def _send(order_id):
    delivery, _ = services.delivery_create(
        api_key=None,
        customer="acme",
        action="shopify.set_order_tags",
        input={"order_id": order_id, "tags": ["paced"]},
    )
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    # One batch each: what two workers would do, sharing only the limit store.
    return services.deliveries_attempt(delivery_ids=[delivery.pk]).get(delivery.pk)


@responses.activate
def test_a_nearly_full_bucket_holds_the_shops_other_sends(shop):
    for order_id, used in ((1, "39/40"), (2, "1/40")):
        responses.put(
            ORDER_URL.format(order_id),
            json={"order": {"id": order_id, "tags": "paced"}},
            headers={"X-Shopify-Shop-Api-Call-Limit": used},
        )
    assert _send(1) == Delivery.Status.SUCCEEDED
    assert _send(2) == Delivery.Status.PENDING  # deferred by the first answer's header
    deferred = Delivery.objects.get(input__order_id=2)
    assert deferred.attempts == 0
    assert deferred.last_error.startswith("Deferred")
    assert len(responses.calls) == 1


@responses.activate
def test_a_bucket_with_room_paces_nothing(shop):
    for order_id in (1, 2):
        responses.put(
            ORDER_URL.format(order_id),
            json={"order": {"id": order_id, "tags": "paced"}},
            headers={"X-Shopify-Shop-Api-Call-Limit": "10/40"},
        )
    assert _send(1) == _send(2) == Delivery.Status.SUCCEEDED
