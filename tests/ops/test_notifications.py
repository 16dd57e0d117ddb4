"""Operational notifications: a receiver gets a verifiable ``breaker.opened`` right after a
breaker opens; each event type is raised where it happens; one per subject per window; retried
with backoff; emailed; listed read-only in the admin."""

import io
import json
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
import responses
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from credentials.crypto import generate_key
from credentials.models import CredentialVersion
from credentials.services import credential_create, credential_rotate
from integrations.dispatcher import default_steps
from integrations.limits.control import breaker_close
from integrations.models import CircuitBreaker, Delivery, OpsNotification
from integrations.ops.conditions import ops_conditions_check
from integrations.ops.services import ops_notifications_send, ops_notify, ops_signing_secret_rotate
from tests.integrations.deliveries.conftest import CARD_URL
from tests.integrations.limits.fixtures import breaker_opened
from tests.integrations.limits.test_engine import attempt, create
from tests.local_http import LocalHttpServer

pytestmark = pytest.mark.django_db

Type = OpsNotification.Type


@pytest.fixture
def receiver(settings):
    """An ops webhook receiver answering ``status`` (204 unless a test changes it)."""
    received: list[tuple[dict, bytes]] = []
    state = {"status": 204}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = LocalHttpServer(Handler, "/ops")
    settings.SWITCHYARD_OPS_WEBHOOK_URL = server.url
    server.received, server.state = received, state
    yield server
    server.close()


def _send_step():
    [step] = [s for s in default_steps() if s.name == "send_ops_notifications"]
    assert step.every_seconds <= 1
    return step.run


@responses.activate
def test_a_receiver_gets_a_verifiable_breaker_opened_right_after_it_opens(
    trello_credential, settings, receiver
):
    responses.add_passthru(receiver.url)
    secret = ops_signing_secret_rotate(grace_seconds=0)
    settings.SWITCHYARD_BREAKER_FAILURES = 3
    responses.put(CARD_URL, status=503, body="down")
    for n in range(3):
        attempt(create(n=n))
    assert CircuitBreaker.objects.get(provider_key="trello").state == "open"
    opened = time.monotonic()
    _send_step()()  # the dispatcher's next pass, at most a second later
    assert time.monotonic() - opened < 2
    [(headers, body)] = receiver.received
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "breaker.opened"
    assert payload["data"]["subject"] == "breaker:trello/eu"
    assert (payload["data"]["provider"], payload["data"]["region"]) == ("trello", "eu")
    assert headers["webhook-id"].startswith("ops_")
    assert b"down" not in body  # the provider's answer stays in the admin
    sent = OpsNotification.objects.get()
    assert (sent.status, sent.attempts, sent.type) == ("sent", 1, Type.BREAKER_OPENED)


def test_an_operator_closing_the_breaker_sends_breaker_closed(receiver):
    ops_signing_secret_rotate(grace_seconds=0)
    breaker = breaker_opened("miro", "eu")
    assert breaker.state == "open"
    ops_notifications_send()  # breaker.opened
    receiver.received.clear()
    assert breaker_close(breaker=breaker)
    ops_notifications_send()
    [(_, body)] = receiver.received
    assert json.loads(body)["type"] == "breaker.closed"


def test_one_notification_per_subject_per_window(receiver, settings):
    settings.SWITCHYARD_OPS_NOTIFY_WINDOW_SECONDS = 900
    first = ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={})
    assert ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={}) is None
    assert ops_notify(type=Type.BREAKER_OPENED, subject="breaker:y/eu", data={}) is not None
    assert ops_notify(type=Type.BREAKER_CLOSED, subject="breaker:x/eu", data={}) is not None
    first.refresh_from_db()
    assert first.repeats == 1
    OpsNotification.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(seconds=901)
    )
    assert ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={}) is not None


def test_a_failing_receiver_is_retried_with_backoff(receiver):
    ops_signing_secret_rotate(grace_seconds=0)
    receiver.state["status"] = 500
    notification = ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={})
    assert ops_notifications_send() == 0
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "HTTP 500" in notification.last_error
    assert notification.next_attempt_at > timezone.now()
    assert ops_notifications_send() == 0 and len(receiver.received) == 1  # not due yet
    receiver.state["status"] = 204
    OpsNotification.objects.update(next_attempt_at=timezone.now())
    assert ops_notifications_send() == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)


def test_without_a_signing_secret_nothing_unsigned_is_sent(receiver):
    ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={})
    ops_notifications_send()
    assert receiver.received == []
    assert "ops_webhook_secret" in OpsNotification.objects.get().last_error


def test_the_destination_goes_through_the_egress_policy(receiver, settings):
    ops_signing_secret_rotate(grace_seconds=0)
    settings.SWITCHYARD_EGRESS_ALLOW = []
    ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={})
    ops_notifications_send()
    assert receiver.received == []
    assert "EgressRefused" in OpsNotification.objects.get().last_error


def test_a_rotated_secret_signs_with_both_during_grace(receiver):
    old = ops_signing_secret_rotate(grace_seconds=0)
    new = ops_signing_secret_rotate(grace_seconds=3600)
    ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={})
    ops_notifications_send()
    [(headers, body)] = receiver.received
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "breaker.opened"


def test_emails_go_through_djangos_backend(settings):
    settings.SWITCHYARD_OPS_EMAILS = ["oncall@example.com"]
    ops_notify(type=Type.SUBSCRIPTION_DISABLED, subject="subscription:7", data={"reason": "410"})
    assert ops_notifications_send() == 1
    [message] = mail.outbox
    assert message.to == ["oncall@example.com"]
    assert "subscription.disabled" in message.subject


def test_not_configured_notifications_are_still_listed():
    notification = ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={})
    assert notification.status == "not_sent"
    assert ops_notifications_send() == 0


def test_a_disabled_subscription_is_notified(acme, settings):
    from webhooks.services import subscription_create, subscription_disable

    settings.SWITCHYARD_OPS_EMAILS = ["oncall@example.com"]
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/in", event_types=["*"], customer=acme
    )
    subscription_disable(subscription_id=subscription.pk, reason="Receiver answered 410 Gone.")
    notification = OpsNotification.objects.get(type=Type.SUBSCRIPTION_DISABLED)
    assert notification.subject == f"subscription:{subscription.pk}"


def test_dead_letters_rising_over_the_threshold(acme, settings):
    settings.SWITCHYARD_OPS_DEAD_LETTERS_THRESHOLD = 3
    settings.SWITCHYARD_OPS_EMAILS = ["oncall@example.com"]
    for n in range(3):
        delivery = create(n=n)
        ops_conditions_check()
        Delivery.objects.filter(pk=delivery.pk).update(status="dead", finished_at=timezone.now())
    assert not OpsNotification.objects.exists()  # two were below the threshold
    ops_conditions_check()
    notification = OpsNotification.objects.get(type=Type.DEAD_LETTERS_RISING)
    assert notification.data["dead_letters"] == 3


def test_a_previous_version_used_near_the_end_of_grace(acme, settings):
    credential = credential_create(
        provider="trello",
        purpose="api",
        customer=acme,
        fields={"api_key": "a" * 32, "token": "b" * 64},
    )
    credential_rotate(
        credential=credential, fields={"api_key": "c" * 32, "token": "d" * 64}, grace_seconds=3600
    )
    previous = CredentialVersion.objects.get(credential=credential, state="previous")
    ops_conditions_check()
    assert not OpsNotification.objects.exists()  # not used since the rotation
    CredentialVersion.objects.filter(pk=previous.pk).update(last_used_at=timezone.now())
    ops_conditions_check()
    notification = OpsNotification.objects.get(type=Type.CREDENTIAL_GRACE_IN_USE)
    assert notification.subject == f"credential:{credential.pk}:v1"
    assert "b" * 64 not in json.dumps(notification.data)


def test_an_old_master_key_still_in_use(acme, settings):
    credential_create(
        provider="trello",
        purpose="api",
        customer=acme,
        fields={"api_key": "a" * 32, "token": "b" * 64},
    )
    ops_conditions_check()
    assert not OpsNotification.objects.exists()
    settings.SWITCHYARD_ENCRYPTION_KEYS = [generate_key(), *settings.SWITCHYARD_ENCRYPTION_KEYS]
    ops_conditions_check()
    notification = OpsNotification.objects.get(type=Type.MASTER_KEY_IN_USE)
    assert notification.data["versions"] == 1


def test_the_admin_lists_notifications_read_only(admin_client):
    notification = ops_notify(type=Type.BREAKER_OPENED, subject="breaker:x/eu", data={})
    listing = admin_client.get("/admin/integrations/opsnotification/")
    assert listing.status_code == 200 and b"breaker:x/eu" in listing.content
    assert admin_client.get("/admin/integrations/opsnotification/add/").status_code == 403
    detail = admin_client.get(f"/admin/integrations/opsnotification/{notification.pk}/change/")
    assert detail.status_code == 200


def test_the_command_prints_a_new_secret_once():
    out = io.StringIO()
    call_command("ops_webhook_secret", stdout=out)
    assert out.getvalue().startswith("whsec_")
