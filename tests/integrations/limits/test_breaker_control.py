"""The breaker's first opening survives failed probes; an operator closes a breaker or asks for
a probe now, on either store, and does so from the admin (gated and audited)."""

import time
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from integrations.deliveries import services
from integrations.limits import control
from integrations.limits.stores import limit_store
from integrations.models import CircuitBreaker, Delivery
from tests.integrations.deliveries.conftest import CARD, LIST
from tests.integrations.limits.test_stores import T0, allow, fail, succeed

pytestmark = pytest.mark.django_db


def _row():
    return CircuitBreaker.objects.get(provider_key="trello", region="eu")


def _opened(store):
    for delivery_id in (1, 2, 3):
        fail(store, delivery_id, T0)
    return _row()


def test_a_failed_probe_renews_the_cool_off_but_keeps_the_first_opening(store):
    first = _opened(store).first_opened_at
    assert first is not None and first.timestamp() == pytest.approx(T0)
    assert allow(store, T0 + 30).probe
    assert fail(store, 4, T0 + 31) == "open"
    row = _row()
    assert row.opened_at.timestamp() == pytest.approx(T0 + 31)
    assert row.first_opened_at == first
    assert allow(store, T0 + 61).probe
    assert succeed(store, T0 + 62) == "closed"
    assert _row().first_opened_at is None


def test_close_forgets_the_failures(store):
    _opened(store)
    assert store.breaker_control("trello", "eu", action="close", now=T0 + 1) == "open"
    row = _row()
    assert (row.state, row.failing_deliveries, row.first_opened_at) == ("closed", [], None)
    assert allow(store, T0 + 2).wait is None


def test_probe_now_ends_the_cool_off(store):
    _opened(store)
    assert allow(store, T0 + 5).wait == pytest.approx(25.0)
    store.breaker_control("trello", "eu", action="probe", now=T0 + 5)
    assert allow(store, T0 + 5.1).probe


def _held(customer, breaker):
    delivery, _ = services.delivery_create(
        api_key=None,
        customer=customer.slug,
        action="trello.move_card",
        input={"card_id": CARD, "list_id": LIST},
    )
    Delivery.objects.filter(pk=delivery.pk).update(
        status="pending",
        next_attempt_at=timezone.now() + timedelta(seconds=25),
        last_error=f"Deferred 25.0 s: circuit breaker of {breaker.provider_key}/"
        f"{breaker.region} is open.",
    )
    return delivery.pk


@pytest.fixture
def breaker(acme, trello_credential):
    """Opened through the store in use (Redis holds the truth when configured)."""
    for delivery_id in (1, 2, 3):
        limit_store().breaker_record(
            "trello",
            acme.region.code,
            ok=False,
            delivery_id=delivery_id,
            threshold=3,
            cool_off=30.0,
            now=time.time(),
            error="HTTP 502: Bad Gateway",
        )
    return CircuitBreaker.objects.get(provider_key="trello", region=acme.region.code)


def test_breaker_page_shows_held_deliveries_and_first_opening(admin_client, acme, breaker):
    pk = _held(acme, breaker)
    html = admin_client.get(f"/admin/integrations/circuitbreaker/{breaker.pk}/change/")
    html = html.content.decode()
    assert f"/admin/integrations/delivery/{pk}/change/" in html
    assert "Failing since" in html and "/close/" in html and "/probe/" in html


def test_close_from_the_admin_is_confirmed_and_audited(admin_client, breaker):
    url = f"/admin/integrations/circuitbreaker/{breaker.pk}/close/"
    assert admin_client.get(url).status_code == 200
    assert CircuitBreaker.objects.get(pk=breaker.pk).state == "open"
    admin_client.post(url, {"reason": "provider recovered"})
    assert CircuitBreaker.objects.get(pk=breaker.pk).state == "closed"
    entry = LogEntry.objects.get(object_id=str(breaker.pk))
    assert "provider recovered" in entry.change_message and entry.user.username == "admin"


def test_probe_now_makes_the_longest_held_delivery_due(admin_client, acme, breaker):
    pk = _held(acme, breaker)
    admin_client.post(f"/admin/integrations/circuitbreaker/{breaker.pk}/probe/")
    assert Delivery.objects.get(pk=pk).next_attempt_at <= timezone.now()
    assert CircuitBreaker.objects.get(pk=breaker.pk).open_until <= timezone.now()
    assert LogEntry.objects.filter(object_id=str(breaker.pk)).exists()


def test_probe_of_a_closed_breaker_is_refused(admin_client, breaker):
    control.breaker_close(breaker=breaker)
    with pytest.raises(ValueError):
        control.breaker_probe_now(breaker=breaker)


@pytest.mark.parametrize("action", ["close", "probe"])
def test_breaker_actions_need_change_permission(django_user_model, breaker, action):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_circuitbreaker"))
    client = Client()
    client.force_login(user)
    url = f"/admin/integrations/circuitbreaker/{breaker.pk}/{action}/"
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert CircuitBreaker.objects.get(pk=breaker.pk).state == "open"


def test_breaker_actions_refuse_a_post_without_csrf(django_user_model, breaker):
    user = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = f"/admin/integrations/circuitbreaker/{breaker.pk}/close/"
    assert client.post(url).status_code == 403
    assert CircuitBreaker.objects.get(pk=breaker.pk).state == "open"
