"""Shopify pacing from its leaky bucket: ``X-Shopify-Shop-Api-Call-Limit`` (used/size) past
three quarters of the bucket holds the shop's next sends, in every worker and for every
credential of the customer on that shop, until it has leaked back; another shop's sends, and
another customer's naming the same shop, go on. On whichever limit store the suite runs
(database, or Redis with REDIS_URL); the tenant-isolation cases run on both. Shops are mocked
with ``responses``."""

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
SHOPIFY_RATE = ShopifyProvider.default_rate_limit["rate"]


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
def test_two_customers_naming_one_shop_do_not_share_its_bucket(acme, globex, initech):
    """acme and globex each name the shop "fake" with their own token: acme's nearly full
    answer holds acme's next send there, never globex's (a tenant cannot pace another's
    shop, whoever really owns it); initech's shop "other" is not held either."""
    _on_shop(acme, "fake", "token-acme")
    _on_shop(globex, "fake", "token-globex")
    _on_shop(initech, "other", "token-initech")
    _answers("fake", 1, "39/40")
    _answers("fake", 2, "1/40")
    _answers("other", 3, "1/40")
    _answers("fake", 4, "1/40")
    assert _send(1, "acme") == Delivery.Status.SUCCEEDED
    assert _send(2, "globex") == Delivery.Status.SUCCEEDED
    assert _send(3, "initech") == Delivery.Status.SUCCEEDED
    assert _send(4, "acme") == Delivery.Status.PENDING  # acme's own bucket is paced
    assert Delivery.objects.get(input__order_id=4).attempts == 0
    assert [call.request.url.split("/")[2] for call in responses.calls] == [
        "fake.myshopify.com",
        "fake.myshopify.com",
        "other.myshopify.com",
    ]


def _quotas(shop_name, credential_id, customer_id=1, **config):
    return rate_limit_quotas(
        provider_key="shopify",
        config={"shop": shop_name, **config},
        customer_id=customer_id,
        credential_id=credential_id,
        credential_fields={"access_token": "t"},
    )


def test_the_customers_shop_is_the_paced_scope():
    [own_a, shop_a], [own_b, shop_b] = _quotas("fake", 1), _quotas("fake", 2)
    assert own_a.key != own_b.key
    assert shop_a.key == shop_b.key == "shopify:bucket:1:fake.myshopify.com"
    assert (shop_a.paced, own_a.paced) == (True, False)
    [_, other] = _quotas("other", 1)
    assert other.key == "shopify:bucket:1:other.myshopify.com"
    [_, elsewhere] = _quotas("fake", 3, customer_id=2)
    assert elsewhere.key == "shopify:bucket:2:fake.myshopify.com"
    # A base_url override is the shop actually reached (a proxy, the fake provider).
    [_, proxied] = _quotas("fake", 1, base_url="https://u:secret@Proxy.example:8443/shopify/")
    assert proxied.key == "shopify:bucket:1:proxy.example:8443/shopify"
    [_, long] = _quotas("fake", 1, base_url=f"https://proxy.example/{'p' * 150}")
    assert long.key.startswith("shopify:bucket:1:") and len(long.key) <= 120


def test_the_buckets_rate_is_the_providers_never_the_integrations():
    plus = {"rate_limit": {"rate": 10000, "per_seconds": 0.001}}
    [own, bucket], [_, standard] = _quotas("fake", 1, **plus), _quotas("fake", 2)
    assert own.rate == 10000  # the credential's own limit still follows its integration
    assert (bucket.rate, bucket.window) == (standard.rate, standard.window)
    assert bucket.rate == SHOPIFY_RATE


def _outcome(used):
    response = {"status": 200, "headers": {"X-Shopify-Shop-Api-Call-Limit": used}}
    return CallOutcome(outcome=Outcome.SUCCESS, response=response)


def test_a_worker_holding_slots_stops_when_another_fills_the_shops_bucket(settings, monkeypatch):
    """Worker A holds rate-limit slots granted ahead (its batch has more sends to make); worker
    D, another customer naming the same shop, reports a full bucket: A goes on. Worker B, on
    another credential of A's customer and shop, learns the bucket is nearly full: A's next
    send waits too, and worker C on another shop goes on."""
    settings.SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS = 1.0  # grants stay usable for 0.5 s
    # A Plus deployment's bucket rate, so the shop has room for every send below.
    monkeypatch.setattr(ShopifyProvider, "default_rate_limit", {"rate": 20, "per_seconds": 1})
    scope = {"provider_key": "shopify", "region": "eu"}
    worker_a, worker_b, worker_c, worker_d = (SendPermits() for _ in range(4))
    quotas_a, quotas_b, quotas_c = _quotas("fake", 1), _quotas("fake", 2), _quotas("other", 3)
    quotas_d = _quotas("fake", 4, customer_id=2)
    ask = {"customer_id": 1, "wanted": 4}
    assert isinstance(worker_a.permit(quotas=quotas_a, **scope, **ask), Permit)
    assert isinstance(worker_a.permit(quotas=quotas_a, **scope, **ask), Permit)  # holds a spare
    permit = worker_d.permit(quotas=quotas_d, **scope, customer_id=2)
    settled(quotas=quotas_d, delivery_id=1, outcome=_outcome("40/40"), permit=permit, **scope)
    assert isinstance(worker_a.permit(quotas=quotas_a, **scope, **ask), Permit)
    permit = worker_b.permit(quotas=quotas_b, **scope, customer_id=1)
    assert isinstance(permit, Permit)
    before = time.time()
    settled(quotas=quotas_b, delivery_id=2, outcome=_outcome("39/40"), permit=permit, **scope)
    held = worker_a.permit(quotas=quotas_a, **scope, **ask)
    assert isinstance(held, Deferral)
    # 39 used of 40, paced to below 30 at 20 per 2 seconds (the margin widens the window).
    assert held.seconds == pytest.approx(9 / 10, abs=time.time() - before + 0.01)
    assert isinstance(worker_c.permit(quotas=quotas_c, **scope, customer_id=1), Permit)


# -- tenant isolation, on the database store and on Redis (skipped without REDIS_URL) ----------


def _admit(store, quotas, customer, now):
    return store.admit(
        quotas, customer=customer, now=now, breaker=("shopify", "eu"), probe_lease=30
    ).wait


def test_another_customer_naming_my_shop_does_not_delay_my_sends(store, acme, globex):
    """globex names acme's shop with a huge rate limit and sends as fast as it may, then its
    shop bucket is paced for a minute: acme's sends on its own shop go on at once."""
    victim = _quotas("acme-shop", 1, customer_id=acme.pk)
    flood = {"rate_limit": {"rate": 10000, "per_seconds": 1}}
    attacker = _quotas("acme-shop", 2, customer_id=globex.pk, **flood)
    assert victim[-1].key != attacker[-1].key
    now = time.time()
    granted = sum(_admit(store, attacker, "globex", now) is None for _ in range(50))
    assert granted == SHOPIFY_RATE  # its bucket keeps the provider's rate, not its own
    store.cool_down([attacker[-1].key], until=now + 60)
    assert _admit(store, victim, "acme", now + 0.01) is None
    assert _admit(store, victim, "acme", now + 0.02) is None


def test_a_tiny_window_elsewhere_erases_none_of_my_hits(store, acme, globex, settings):
    """A tenant's tiny ``per_seconds`` prunes only its own keys: acme's full shop bucket stays
    full, so acme's next send still waits."""
    settings.SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS = 0.2  # acme's hits count for 1.2 s
    # One send from each of acme's two tokens on the shop fills the bucket, not the credentials.
    victim, rotated = (_quotas("acme-shop", pk, customer_id=acme.pk) for pk in (1, 3))
    tiny = {"rate_limit": {"rate": 10000, "per_seconds": 0.001}}
    attacker = _quotas("acme-shop", 2, customer_id=globex.pk, **tiny)
    now = time.time()
    assert SHOPIFY_RATE == 2
    assert _admit(store, victim, "acme", now) is None
    assert _admit(store, rotated, "acme", now) is None
    assert _admit(store, attacker, "globex", now + 0.5) is None
    wait = _admit(store, victim, "acme", now + 0.6)
    assert wait is not None and wait > 0


def test_one_customers_credentials_on_one_shop_share_its_bucket(store, acme):
    """Two credentials of acme on one shop (a rotated token, a second integration with another
    rate limit) fill one bucket: when the first has used it up, the second waits."""
    first = _quotas("acme-shop", 1, customer_id=acme.pk)
    second = _quotas("acme-shop", 2, customer_id=acme.pk, rate_limit={"rate": 20, "per_seconds": 1})
    assert first[-1] == second[-1]
    now = time.time()
    assert all(_admit(store, first, "acme", now) is None for _ in range(SHOPIFY_RATE))
    assert _admit(store, second, "acme", now + 0.01) > 0
