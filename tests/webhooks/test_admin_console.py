"""The operator console's webhook screens through Django's test client: endpoint and
subscription health, pause / resume, send test event, event → deliveries links, and their
permission gating and audit."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client

from integrations.models import Delivery
from webhooks.admin_forms import event_types_parse
from webhooks.models import InboundEvent, Subscription, WebhookEndpoint
from webhooks.services import subscription_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def _viewer(*codenames):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_endpoint_health_page(admin_client, make_endpoint, post_webhook):
    endpoint = make_endpoint("shopify")
    post_webhook(endpoint)
    page = admin_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    html = page.content.decode()
    assert f"http://testserver/webhooks/shopify/{endpoint.public_id}/" in html
    assert 'data-copy-target="receive-url"' in html
    assert "Last received" in html and "100.0 %" in html
    listing = admin_client.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert f"http://testserver/webhooks/shopify/{endpoint.public_id}/" in listing
    assert "shopify · acme" in admin_client.get("/admin/webhooks/inboundevent/").content.decode()


def test_endpoint_pause_and_resume_are_audited(admin_client, make_endpoint):
    endpoint = make_endpoint("trello")
    base = f"/admin/webhooks/webhookendpoint/{endpoint.pk}"
    admin_client.post(f"{base}/pause/", {"reason": "provider storm"})
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active is False
    admin_client.post(f"{base}/resume/")
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active is True
    messages = [e.change_message for e in LogEntry.objects.filter(object_id=str(endpoint.pk))]
    assert any("provider storm" in m for m in messages) and len(messages) == 2


def test_send_test_event_posts_a_signed_test_event(admin_client, subscriber):
    subscription, _ = subscription_create(url=subscriber.url, event_types=["*"], allow_private=True)
    url = f"/admin/webhooks/subscription/{subscription.pk}/test/"
    assert admin_client.get(url).status_code == 200 and not subscriber.requests
    done = admin_client.post(url, follow=True).content.decode()
    assert "Test event accepted (HTTP 200" in done
    headers, body = subscriber.requests[0]
    assert json.loads(body)["type"] == "switchyard.test"
    assert headers["webhook-signature"].startswith("v1,")
    assert "whsec_" not in done
    assert "Sent a test event" in LogEntry.objects.get().change_message


def test_send_test_event_reports_a_refusal(admin_client, subscriber):
    subscriber.status = 500
    subscription, _ = subscription_create(url=subscriber.url, event_types=["*"], allow_private=True)
    done = admin_client.post(f"/admin/webhooks/subscription/{subscription.pk}/test/", follow=True)
    assert "Test event refused (HTTP 500" in done.content.decode()


def test_subscription_pause_resume_and_health(admin_client):
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    base = f"/admin/webhooks/subscription/{subscription.pk}"
    admin_client.post(f"{base}/pause/", {"reason": "receiver down"})
    paused = Subscription.objects.get(pk=subscription.pk)
    assert not paused.active and "receiver down" in paused.disabled_reason
    page = admin_client.get(f"{base}/change/").content.decode()
    assert 'id="sy-health"' in page and "receiver down" in page and f"{base}/resume/" in page
    admin_client.post(f"{base}/resume/")
    assert Subscription.objects.get(pk=subscription.pk).active


@pytest.mark.parametrize(
    "text", ["trello.*\nstripe.*", "trello.*, stripe.*", '["trello.*", "stripe.*"]']
)
def test_event_types_parse_lines_commas_or_json(text):
    assert event_types_parse(text) == ["trello.*", "stripe.*"]


def test_subscription_event_types_are_validated_with_examples(admin_client):
    data = {"url": "https://example.com/hooks", "event_types": "trello.*\nnot valid!"}
    page = admin_client.post("/admin/webhooks/subscription/add/", data).content.decode()
    assert "Not an event type pattern: not valid!" in page
    assert "stripe.invoice.paid" in page  # the help text's example


@pytest.mark.parametrize("action", ["test", "pause", "resume"])
def test_subscription_actions_need_change_permission(action):
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    viewer = _viewer("view_subscription")
    url = f"/admin/webhooks/subscription/{subscription.pk}/{action}/"
    assert viewer.get(url).status_code == 403
    assert viewer.post(url).status_code == 403


def test_endpoint_actions_need_change_permission(make_endpoint):
    endpoint = make_endpoint("trello")
    viewer = _viewer("view_webhookendpoint")
    assert viewer.post(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/pause/").status_code == 403
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active


def test_event_page_links_its_deliveries_and_replays(
    admin_client, make_endpoint, post_webhook, subscriber
):
    subscription, _ = subscription_create(url=subscriber.url, event_types=["*"], allow_private=True)
    post_webhook(make_endpoint("shopify"))
    event = InboundEvent.objects.get()
    page = admin_client.get(f"/admin/webhooks/inboundevent/{event.pk}/change/").content.decode()
    assert f"/admin/webhooks/subscription/{subscription.pk}/change/" in page
    delivery = Delivery.objects.get(action="standard_webhooks.send")
    assert f"/admin/integrations/delivery/{delivery.pk}/change/" in page
    sent = admin_client.get(f"/admin/integrations/delivery/{delivery.pk}/change/").content
    assert f"/admin/webhooks/inboundevent/{event.pk}/change/" in sent.decode()
    assert f"/admin/webhooks/subscription/{subscription.pk}/change/" in sent.decode()
    admin_client.post(f"/admin/webhooks/inboundevent/{event.pk}/replay/", {"reason": "again"})
    assert "again" in LogEntry.objects.get(object_id=str(event.pk)).change_message


def test_rotate_page_has_a_title(admin_client):
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    page = admin_client.get(f"/admin/webhooks/subscription/{subscription.pk}/rotate/")
    assert "<title>Rotate the signing secret" in page.content.decode()
