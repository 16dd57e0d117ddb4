"""Shopify pacing from its leaky bucket: ``X-Shopify-Shop-Api-Call-Limit`` (used/size) past
three quarters of the bucket holds the shop's next sends, in every worker and for every
credential on that shop, until it has leaked back; another shop's sends go on. On whichever
limit store the suite runs (database, or Redis with REDIS_URL). Shops are mocked with
``responses``."""

import time

import pytest
import responses
from django.utils import timezone

from credentials.services import credential_create
from customers.models import Customer
from integrations.deliveries import services
from integrations.deliveries.send import CallOutcome
from integrations.limits.services import Deferral, Permit, SendPermits, rate_limit_quotas
from integrations.limits.services import send_settled as settled
from integrations.models import Delivery
from integrations.providers.shopify import ShopifyProvider
from integrations.providers.types import Outcome
from integrations.services import integration_create

pytestmark = pytest.mark.django_db

ORDER_URL = "https://{shop}.myshopify.com/admin/api/2025-07/orders/{order}.json"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1/40", 0), ("30/40", 0), ("32/40", 1.0), ("40/40", 5.0), ("390/400", 45.0), ("", 0)],
)
def test_pace_from_the_call_limit_header(header, seconds):
    headers = {"X-Shopify-Shop-Api-Call-Limit": header} if header else {}
    assert ShopifyProvider().pace_seconds(headers, 2.0) == pytest.approx(seconds)


def _on_shop(customer, shop_name, token):
    """``customer``'s integration on the shop, with its own access token (its own credential)."""
    integration_create(
        customer=customer,
        provider_key="shopify",
        config={"shop": shop_name, "api_version": "2025-07"},
    )
    credential_create(
        provider="shopify", purpose="api", customer=customer, fields={"access_token": token}
    )


@pytest.fixture
def shop(acme):
    _on_shop(acme, "fake", "t")


@pytest.fixture
def initech(region_eu):
    return Customer.objects.create(slug="initech", name="Initech", region=region_eu)


def _answers(shop_name, order_id, used):
    responses.put(
        ORDER_URL.format(shop=shop_name, order=order_id),
        json={"order": {"id": order_id, "tags": "paced"}},
        headers={"X-Shopify-Shop-Api-Call-Limit": used},
    )


def _send(order_id, customer="acme"):
    delivery, _ = services.delivery_create(
        api_key=None,
        customer=customer,
        action="shopify.set_order_tags",
        input={"order_id": order_id, "tags": ["paced"]},
    )
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    # One batch each: what two workers would do, sharing only the limit store.
    return services.deliveries_attempt(delivery_ids=[delivery.pk]).get(delivery.pk)


@responses.activate
def test_a_nearly_full_bucket_holds_the_shops_other_sends(shop):
    _answers("fake", 1, "39/40")
    _answers("fake", 2, "1/40")
    assert _send(1) == Delivery.Status.SUCCEEDED
    assert _send(2) == Delivery.Status.PENDING  # deferred by the first answer's header
    deferred = Delivery.objects.get(input__order_id=2)
    assert deferred.attempts == 0
    assert deferred.last_error.startswith("Deferred")
    assert len(responses.calls) == 1


@responses.activate
def test_a_bucket_with_room_paces_nothing(shop):
    _answers("fake", 1, "10/40")
    _answers("fake", 2, "10/40")
    assert _send(1) == _send(2) == Delivery.Status.SUCCEEDED


@responses.activate
def test_two_credentials_on_one_shop_share_its_bucket_and_another_shop_goes_on(
    acme, globex, initech
):
    """acme and globex each have their own token on the shop "fake": one bucket, so acme's
    nearly full answer holds globex's send; initech's shop "other" is not held."""
    _on_shop(acme, "fake", "token-acme")
    _on_shop(globex, "fake", "token-globex")
    _on_shop(initech, "other", "token-initech")
    _answers("fake", 1, "39/40")
    _answers("fake", 2, "1/40")
    _answers("other", 3, "1/40")
    assert _send(1, "acme") == Delivery.Status.SUCCEEDED
    assert _send(2, "globex") == Delivery.Status.PENDING
    assert Delivery.objects.get(input__order_id=2).attempts == 0
    assert _send(3, "initech") == Delivery.Status.SUCCEEDED
    assert [call.request.url.split("/")[2] for call in responses.calls] == [
        "fake.myshopify.com",
        "other.myshopify.com",
    ]


def _quotas(shop_name, credential_id, **config):
    return rate_limit_quotas(
        provider_key="shopify",
        config={"shop": shop_name, **config},
        customer_id=1,
        credential_id=credential_id,
        credential_fields={"access_token": "t"},
    )


def test_the_shop_is_the_paced_scope():
    [own_a, shop_a], [own_b, shop_b] = _quotas("fake", 1), _quotas("fake", 2)
    assert own_a.key != own_b.key
    assert shop_a.key == shop_b.key == "shopify:bucket:fake.myshopify.com"
    assert (shop_a.paced, own_a.paced) == (True, False)
    [_, other] = _quotas("other", 1)
    assert other.key == "shopify:bucket:other.myshopify.com"
    # A base_url override is the shop actually reached (a proxy, the fake provider).
    [_, proxied] = _quotas("fake", 1, base_url="https://u:secret@Proxy.example:8443/shopify/")
    assert proxied.key == "shopify:bucket:proxy.example:8443/shopify"


def _outcome(used):
    response = {"status": 200, "headers": {"X-Shopify-Shop-Api-Call-Limit": used}}
    return CallOutcome(outcome=Outcome.SUCCESS, response=response)


def test_a_worker_holding_slots_stops_when_another_fills_the_shops_bucket(settings):
    """Worker A holds rate-limit slots granted ahead (its batch has more sends to make); worker
    B, on another credential of the same shop, learns the bucket is nearly full: A's next send
    waits too, and worker C on another shop goes on."""
    settings.SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS = 1.0  # grants stay usable for 0.5 s
    scope = {"provider_key": "shopify", "region": "eu"}
    worker_a, worker_b, worker_c = SendPermits(), SendPermits(), SendPermits()
    plus = {"rate_limit": {"rate": 20, "per_seconds": 1}}  # Shopify Plus: room for all four
    quotas_a, quotas_b = _quotas("fake", 1, **plus), _quotas("fake", 2, **plus)
    quotas_c = _quotas("other", 3, **plus)
    ask = {"customer_id": 1, "wanted": 3}
    assert isinstance(worker_a.permit(quotas=quotas_a, **scope, **ask), Permit)
    assert isinstance(worker_a.permit(quotas=quotas_a, **scope, **ask), Permit)  # holds a spare
    permit = worker_b.permit(quotas=quotas_b, **scope, customer_id=2)
    assert isinstance(permit, Permit)
    before = time.time()
    settled(quotas=quotas_b, delivery_id=1, outcome=_outcome("39/40"), permit=permit, **scope)
    held = worker_a.permit(quotas=quotas_a, **scope, **ask)
    assert isinstance(held, Deferral)
    # 39 used of 40, paced to below 30 at 20 per 2 seconds (the margin widens the window).
    assert held.seconds == pytest.approx(9 / 10, abs=time.time() - before + 0.01)
    assert isinstance(worker_c.permit(quotas=quotas_c, **scope, customer_id=3), Permit)
