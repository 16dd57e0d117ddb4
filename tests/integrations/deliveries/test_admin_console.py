"""The operator console's delivery screens through Django's test client: lists that say why,
the detail page's timeline and its audited Retry / Cancel, and their permission gating."""

import pytest
import responses
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from integrations.deliveries.models import Delivery, DeliveryAttempt
from tests.integrations.deliveries.conftest import CARD, CARD_URL, LIST
from tests.integrations.deliveries.test_admin import dead_letters

pytestmark = pytest.mark.django_db

CARD_JSON = {"id": CARD, "idList": LIST, "idBoard": "5abbe4b7ddc1b351ef961416"}
SECRET = "tok-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _attempt(delivery_id, number, **extra):
    return DeliveryAttempt.objects.create(
        delivery_id=delivery_id,
        number=number,
        started_at=timezone.now(),
        duration_ms=12,
        outcome=extra.pop("outcome", "retry"),
        request_method="PUT",
        request_url=CARD_URL,
        request_headers={"Authorization": f"OAuth {SECRET}", "Accept": "application/json"},
        request_body='{"idList": "x"}',
        response_status=extra.pop("response_status", 503),
        response_headers={"Content-Type": "text/plain"},
        response_body="upstream trouble",
        next_delay_seconds=0.3020559372462901,
        **extra,
    )


def _staff(django_user_model, *codenames):
    user = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_list_shows_status_http_reason_error_and_seconds(admin_client, acme):
    (pk,) = dead_letters(1)
    _attempt(pk, 1, error="HTTP 502: bad gateway")
    Delivery.objects.filter(pk=pk).update(last_error="Deferred 3.0 s: circuit breaker of x/-.")
    html = admin_client.get("/admin/integrations/delivery/").content.decode()
    assert 'class="sy-badge sy-dead"' in html
    assert '<td class="field-http_status">503</td>' in html
    assert "HTTP 502: bad gateway" in html  # the provider's error, not the deferral
    assert "Retries exhausted" in html
    assert " UTC" in html and timezone.now().strftime("%Y-%m-%d") in html


def test_search_finds_error_text_and_input_ids(admin_client, acme):
    (pk,) = dead_letters(1)
    for term in ("503", CARD):
        html = admin_client.get("/admin/integrations/delivery/", {"q": term}).content.decode()
        assert f"/admin/integrations/delivery/{pk}/change/" in html, term
    html = admin_client.get("/admin/integrations/delivery/", {"q": "nothing-like-it"}).content
    assert f"/admin/integrations/delivery/{pk}/change/" not in html.decode()


def test_filters_by_customer_and_date_range(admin_client, acme):
    (pk,) = dead_letters(1)
    today = timezone.now().strftime("%Y-%m-%d")
    url = "/admin/integrations/delivery/"
    hit = admin_client.get(url, {"customer__id__exact": acme.pk, "created_at__gte": today})
    assert f"{url}{pk}/change/" in hit.content.decode()
    miss = admin_client.get(url, {"created_at__lt": "2000-01-01"})
    assert f"{url}{pk}/change/" not in miss.content.decode()


def test_detail_page_has_timeline_masked_curl_and_rounded_delay(admin_client, acme):
    (pk,) = dead_letters(1)
    _attempt(pk, 1)
    html = admin_client.get(f"/admin/integrations/delivery/{pk}/change/").content.decode()
    assert 'id="sy-timeline"' in html and "<details>" in html
    assert "0.3 s" in html and "0.30205" not in html
    assert "curl -X PUT" in html
    assert SECRET not in html
    assert f"/admin/integrations/delivery/{pk}/retry/" in html


@responses.activate
def test_retry_from_detail_page_is_confirmed_then_audited(
    admin_client, trello_credential, django_capture_on_commit_callbacks
):
    responses.put(CARD_URL, json=CARD_JSON)
    (pk,) = dead_letters(1)
    url = f"/admin/integrations/delivery/{pk}/retry/"
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "Retry delivery" in confirm.content.decode()
    assert Delivery.objects.get(pk=pk).status == "dead"  # GET never acts
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(url, {"reason": "provider fixed"}, follow=True)
    html = done.content.decode()
    assert Delivery.objects.get(pk=pk).status == "succeeded"
    entry = LogEntry.objects.get(object_id=str(pk))
    assert entry.user.username == "admin" and "provider fixed" in entry.change_message
    assert "provider fixed" in html and 'id="sy-audit"' in html


def test_bulk_retry_from_dead_letter_list_records_the_actor(admin_client, acme):
    ids = dead_letters(2)
    admin_client.post(
        "/admin/integrations/deadletter/",
        {"action": "retry_selected", "_selected_action": ids, "post": "yes", "reason": "bulk"},
    )
    entries = LogEntry.objects.filter(object_id__in=[str(i) for i in ids])
    assert entries.count() == 2
    assert {e.user.username for e in entries} == {"admin"}


def test_cancel_from_detail_page(admin_client, acme):
    (pk,) = dead_letters(1)
    admin_client.post(f"/admin/integrations/delivery/{pk}/cancel/", {"reason": "obsolete"})
    assert Delivery.objects.get(pk=pk).status == "cancelled"
    assert "obsolete" in LogEntry.objects.get(object_id=str(pk)).change_message


def test_retry_of_a_delivery_that_is_not_dead_says_why(admin_client, acme):
    (pk,) = dead_letters(1)
    Delivery.objects.filter(pk=pk).update(status="succeeded")
    done = admin_client.post(f"/admin/integrations/delivery/{pk}/retry/", follow=True)
    assert "only dead letters can be retried" in done.content.decode()
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_actions_need_the_retry_permission(django_user_model, acme, action):
    (pk,) = dead_letters(1)
    viewer = _staff(django_user_model, "view_delivery")
    url = f"/admin/integrations/delivery/{pk}/{action}/"
    assert viewer.get(url).status_code == 403
    assert viewer.post(url).status_code == 403
    page = viewer.get(f"/admin/integrations/delivery/{pk}/change/").content.decode()
    assert url not in page
    assert Delivery.objects.get(pk=pk).status == "dead"


def test_actions_refuse_a_post_without_csrf(django_user_model, acme):
    (pk,) = dead_letters(1)
    user = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"/admin/integrations/delivery/{pk}/retry/").status_code == 403
    assert Delivery.objects.get(pk=pk).status == "dead"
