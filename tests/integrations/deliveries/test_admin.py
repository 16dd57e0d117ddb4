import re

import pytest
import responses
from django.contrib.auth.models import Permission
from django.utils import timezone

from integrations.deliveries import services
from integrations.models import Delivery
from tests.integrations.deliveries.conftest import CARD, CARD_URL, LIST

pytestmark = pytest.mark.django_db

CARD_JSON = {"id": CARD, "idList": LIST, "idBoard": "5abbe4b7ddc1b351ef961416"}


def dead_letters(n, **extra):
    ids = []
    for i in range(n):
        delivery, _ = services.delivery_create(
            api_key=None,
            customer="acme",
            action="trello.move_card",
            input={"card_id": CARD, "list_id": f"{i:024x}"},
        )
        ids.append(delivery.pk)
    Delivery.objects.filter(pk__in=ids).update(
        status="dead",
        attempts=3,
        dead_reason="attempts_exhausted",
        last_error="HTTP 503: upstream trouble",
        finished_at=timezone.now(),
        **extra,
    )
    return ids


def test_dead_letter_screen_lists_reason_and_error(admin_client, acme):
    dead_letters(2)
    html = admin_client.get("/admin/integrations/deadletter/").content.decode()
    assert "Retries exhausted" in html
    assert "HTTP 503: upstream trouble" in html


@responses.activate
def test_bulk_retry_asks_for_confirmation_then_retries(
    admin_client, trello_credential, django_capture_on_commit_callbacks
):
    responses.put(CARD_URL, json=CARD_JSON)
    ids = dead_letters(2)
    action = {"action": "retry_selected", "_selected_action": ids}
    confirm = admin_client.post("/admin/integrations/deadletter/", action)
    assert confirm.status_code == 200
    assert "Retry these 2 deliveries?" in confirm.content.decode()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"dead"}
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(
            "/admin/integrations/deadletter/", {**action, "post": "yes"}, follow=True
        )
    assert "Retried 2 deliveries." in done.content.decode()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def _confirming_post(confirm_page: str) -> dict:
    """What the confirmation page's form posts: its hidden inputs."""
    data = {}
    for name, value in re.findall(
        r'<input type="hidden" name="(\w+)" value="([^"]*)">', confirm_page
    ):
        data.setdefault(name, []).append(value)
    return data


def test_bulk_retry_of_all_selected_across_pages_confirms_the_count_it_retries(admin_client, acme):
    """ "Select all N" with only the rows of one page ticked: the page shows N and the
    confirming POST retries N, not just the ticked rows."""
    ids = dead_letters(3)
    selected_one = {"action": "retry_selected", "_selected_action": ids[:1], "select_across": "1"}
    confirm = admin_client.post("/admin/integrations/deadletter/", selected_one).content.decode()
    assert "<strong>3 dead letters</strong> will be affected." in confirm
    admin_client.post("/admin/integrations/deadletter/", _confirming_post(confirm))
    assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"pending"}


def test_discard_cancels(admin_client, acme):
    ids = dead_letters(1)
    admin_client.post(
        "/admin/integrations/deadletter/",
        {"action": "discard_selected", "_selected_action": ids, "post": "yes"},
    )
    assert Delivery.objects.get(pk=ids[0]).status == "cancelled"


def test_retry_needs_the_retry_delivery_permission(client, django_user_model, acme):
    ids = dead_letters(1)
    viewer = django_user_model.objects.create_user(
        "viewer", password="pw-Viewer-123", is_staff=True
    )
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_delivery", "view_deadletter"])
    )
    client.force_login(viewer)
    page = client.get("/admin/integrations/deadletter/").content.decode()
    assert "retry_selected" not in page
    response = client.post(
        "/admin/integrations/deadletter/",
        {"action": "retry_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert Delivery.objects.get(pk=ids[0]).status == "dead"
    viewer.user_permissions.add(Permission.objects.get(codename="retry_delivery"))
    viewer = django_user_model.objects.get(pk=viewer.pk)
    client.force_login(viewer)
    assert "retry_selected" in client.get("/admin/integrations/deadletter/").content.decode()


@responses.activate
def test_delivery_page_shows_attempts_with_secrets_masked(admin_client, trello_credential):
    from tests.integrations.deliveries.conftest import TRELLO_KEY, TRELLO_TOKEN

    responses.put(CARD_URL, status=503, body="upstream trouble")
    delivery, _ = services.delivery_create(
        api_key=None,
        customer="acme",
        action="trello.move_card",
        input={"card_id": CARD, "list_id": LIST},
    )
    services.deliveries_attempt(delivery_ids=[delivery.pk])
    html = admin_client.get(f"/admin/integrations/delivery/{delivery.pk}/change/").content.decode()
    assert "upstream trouble" in html
    assert "HTTP 503" in html
    assert TRELLO_KEY not in html and TRELLO_TOKEN not in html


def test_delivery_search_by_id_key_and_idempotency_key(admin_client, acme, api_key):
    delivery, _ = services.delivery_create(
        api_key=api_key[0],
        idempotency_key="order-77",
        customer="acme",
        action="trello.move_card",
        input={"card_id": CARD, "list_id": LIST},
    )
    for term in (str(delivery.pk), str(delivery.key), "order-77", "acme"):
        html = admin_client.get("/admin/integrations/delivery/", {"q": term}).content.decode()
        assert f"/admin/integrations/delivery/{delivery.pk}/change/" in html, term
    assert admin_client.get("/admin/integrations/delivery/", {"q": "nothing"}).status_code == 200


def test_delivery_log_is_read_only(admin_client, acme):
    [delivery_id] = dead_letters(1)
    assert admin_client.get("/admin/integrations/delivery/add/").status_code == 403
    page = admin_client.get(f"/admin/integrations/delivery/{delivery_id}/change/").content.decode()
    assert 'name="_save"' not in page
