import pytest
from django.contrib.auth.models import Permission, User

from webhooks.models import InboundEvent, Subscription
from webhooks.services import subscription_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def test_event_log_shows_raw_payload_and_signature_version(
    admin_client, make_endpoint, post_webhook
):
    post_webhook(make_endpoint("shopify"))
    event = InboundEvent.objects.get()
    page = admin_client.get(f"/admin/webhooks/inboundevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b"T-Shirt" in page.content
    assert b"X-Shopify-Hmac-Sha256" not in page.content
    listing = admin_client.get("/admin/webhooks/inboundevent/")
    assert b"shopify.products.update" in listing.content


def test_dead_letter_replay_asks_then_replays(admin_client, make_endpoint, post_webhook):
    post_webhook(make_endpoint("shopify"))
    InboundEvent.objects.update(status="dead")
    pk = InboundEvent.objects.get().pk
    data = {"action": "replay", "_selected_action": [pk]}
    confirm = admin_client.post("/admin/webhooks/deadinboundevent/", data)
    assert b"Replay this event?" in confirm.content
    assert InboundEvent.objects.get().status == "dead"
    admin_client.post("/admin/webhooks/deadinboundevent/", {**data, "post": "yes"})
    assert InboundEvent.objects.get().status in ("received", "processed")


def test_bulk_replay_confirmation_shows_the_count(admin_client, make_endpoint, post_webhook):
    endpoint = make_endpoint("shopify")
    post_webhook(endpoint)
    post_webhook(endpoint, msg_id="a8b1c2d3-0000-4000-8000-000000000002")
    InboundEvent.objects.update(status="dead")
    data = {
        "action": "replay",
        "_selected_action": list(InboundEvent.objects.values_list("pk", flat=True)),
    }
    confirm = admin_client.post("/admin/webhooks/deadinboundevent/", data).content.decode()
    assert "Replay these 2 events?" in confirm
    assert "<strong>2 inbound dead letters</strong> will be affected." in confirm


def test_replay_needs_permission(client, make_endpoint, post_webhook):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_inboundevent"))
    client.force_login(user)
    page = client.get("/admin/webhooks/deadinboundevent/")
    assert page.status_code in (200, 403)
    assert b"Replay selected events" not in page.content


def test_subscription_secret_shown_once_on_rotation(admin_client):
    subscription, first = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    change = admin_client.get(f"/admin/webhooks/subscription/{subscription.pk}/change/")
    assert change.status_code == 200
    assert first.encode() not in change.content
    rotated = admin_client.post(
        f"/admin/webhooks/subscription/{subscription.pk}/rotate/", {"grace_seconds": "60"}
    )
    assert rotated.status_code == 200
    assert b"whsec_" in rotated.content
    assert "no-store" in rotated["Cache-Control"]
    assert Subscription.objects.get().signing_credential.versions.count() == 2
    again = admin_client.get(f"/admin/webhooks/subscription/{subscription.pk}/change/")
    assert b"whsec_" not in again.content


def test_endpoint_admin_shows_receive_url(admin_client, make_endpoint):
    endpoint = make_endpoint("trello")
    page = admin_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert str(endpoint.public_id).encode() in page.content


def test_endpoint_admin_sets_a_tolerance_only_where_the_scheme_signs_a_timestamp(
    admin_client, make_endpoint
):
    def change(endpoint, tolerance):
        return admin_client.post(
            f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
            {
                "customer": endpoint.customer_id,
                "provider": endpoint.provider,
                "credential": endpoint.credential_id,
                "active": "on",
                "tolerance_seconds": tolerance,
            },
        )

    trello = make_endpoint("trello")
    refused = change(trello, 60)
    assert refused.status_code == 200  # the form again, with the error
    assert b"signs no timestamp" in refused.content
    trello.refresh_from_db()
    assert trello.tolerance_seconds is None
    stripe = make_endpoint("stripe")
    assert change(stripe, 60).status_code == 302
    stripe.refresh_from_db()
    assert stripe.tolerance_seconds == 60
