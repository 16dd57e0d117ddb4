"""Fan-out to subscribers: a real HTTP server on 127.0.0.1 receives the normalised event and
checks its signature with the independent ``standardwebhooks`` library."""

import socket

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integrations import egress
from integrations.egress import EgressRefused, destination_check
from integrations.models import Delivery
from webhooks.models import InboundEvent, Subscription
from webhooks.services import subscription_create, subscription_rotate_secret

pytestmark = pytest.mark.django_db


def _verify(secret: str, headers: dict, body: bytes) -> dict:
    lowered = {k.lower(): v for k, v in headers.items()}
    return Webhook(secret).verify(body, lowered)


def test_subscriber_receives_normalised_event_signed(subscriber, make_endpoint, post_webhook):
    _, secret = subscription_create(
        url=subscriber.url, event_types=["trello.*"], allow_private=True
    )
    assert secret.startswith("whsec_")
    post_webhook(make_endpoint("trello"))
    assert len(subscriber.requests) == 1
    headers, body = subscriber.requests[0]
    payload = _verify(secret, headers, body)
    event = InboundEvent.objects.get()
    assert payload == event.envelope
    assert payload["type"] == "trello.card.moved"
    assert payload["data"]["to_list"]["name"] == "Done"
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert headers["webhook-id"] == str(delivery.key)
    with pytest.raises(WebhookVerificationError):
        _verify("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", headers, body)
    # The stored attempt never shows the signature.
    attempt = delivery.attempt_log.get()
    assert attempt.request_headers["webhook-signature"] == "****"


def test_during_rotation_either_secret_verifies(subscriber, make_endpoint, post_webhook):
    subscription, old = subscription_create(
        url=subscriber.url, event_types=["*"], allow_private=True
    )
    new = subscription_rotate_secret(subscription=subscription, grace_seconds=3600)
    assert new != old
    post_webhook(make_endpoint("shopify"))
    headers, body = subscriber.requests[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert _verify(old, headers, body)["type"] == "shopify.products.update"
    assert _verify(new, headers, body)["type"] == "shopify.products.update"


def test_after_grace_only_new_secret_signs(subscriber, make_endpoint, post_webhook):
    subscription, old = subscription_create(
        url=subscriber.url, event_types=["*"], allow_private=True
    )
    new = subscription_rotate_secret(subscription=subscription, grace_seconds=0)
    post_webhook(make_endpoint("stripe"))
    headers, body = subscriber.requests[0]
    assert _verify(new, headers, body)["type"] == "stripe.invoice.paid"
    with pytest.raises(WebhookVerificationError):
        _verify(old, headers, body)


def test_filters_select_subscriptions(subscriber, make_endpoint, post_webhook, globex):
    subscription_create(url=subscriber.url, event_types=["stripe.*"], allow_private=True)
    subscription_create(url=subscriber.url, event_types=["*"], allow_private=True, customer=globex)
    subscription_create(url=subscriber.url, event_types=["trello.card.moved"], allow_private=True)
    post_webhook(make_endpoint("trello"))
    assert len(subscriber.requests) == 1
    assert Delivery.objects.count() == 1


def test_answer_410_disables_subscription(subscriber, make_endpoint, post_webhook):
    subscription, _ = subscription_create(url=subscriber.url, event_types=["*"], allow_private=True)
    subscriber.status = 410
    post_webhook(make_endpoint("shopify"))
    subscription.refresh_from_db()
    assert not subscription.active
    assert subscription.disabled_at is not None
    assert Delivery.objects.get().status == Delivery.Status.DEAD


def test_private_destination_refused_at_send_time(
    subscriber, make_endpoint, post_webhook, settings
):
    """A subscription allowed once and then no longer allowed is not delivered to."""
    subscription, _ = subscription_create(url=subscriber.url, event_types=["*"], allow_private=True)
    Subscription.objects.filter(pk=subscription.pk).update(allow_private=False)
    settings.SWITCHYARD_EGRESS_ALLOW = []  # the subscriber's loopback address is not listed
    post_webhook(make_endpoint("shopify"))
    assert subscriber.requests == []
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DEAD
    assert delivery.dead_reason == Delivery.DeadReason.CONFIGURATION
    assert "non-public" in delivery.last_error
    assert delivery.attempt_log.get().error_class == "egress_refused"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_guard_refuses_private_urls_unless_allowed(url, settings):
    settings.SWITCHYARD_EGRESS_ALLOW = []
    with pytest.raises(EgressRefused):
        destination_check(url, allow_private=False)
    destination_check(url, allow_private=True)


def test_guard_accepts_public_address():
    destination_check("https://8.8.8.8/hook", allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http:///nohost"])
def test_guard_refuses_non_http_urls(url):
    with pytest.raises(EgressRefused):
        destination_check(url, allow_private=True)


def test_secret_is_encrypted_at_rest():
    subscription, secret = subscription_create(
        url="http://127.0.0.1/x", event_types=["*"], allow_private=True
    )
    row = subscription.signing_credential.versions.get()
    assert secret.encode() not in bytes(row.ciphertext)
    assert secret[-4:] not in row.hint
    assert secret not in str(list(Subscription.objects.values()))


def test_a_name_rebound_to_a_private_address_is_refused_on_connect(
    subscriber, make_endpoint, post_webhook, monkeypatch, settings
):
    """DNS rebinding: the send-time check saw a public address, the next answer is 127.0.0.1.
    The connection resolves and checks for itself, and connects only to what it checked."""
    subscription, _ = subscription_create(url=subscriber.url, event_types=["*"], allow_private=True)
    rebinding = subscriber.url.replace("127.0.0.1", "rebind.example")
    Subscription.objects.filter(pk=subscription.pk).update(allow_private=False, url=rebinding)
    settings.SWITCHYARD_EGRESS_ALLOW = []
    answers = iter(["93.184.215.14", "127.0.0.1"])

    def rebind(host, port, family=0):
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(egress, "_getaddrinfo", rebind)
    post_webhook(make_endpoint("shopify"))
    assert subscriber.requests == []
    [attempt] = Delivery.objects.get().attempt_log.all()
    assert attempt.error_class == "egress_refused"
    assert attempt.error == egress.EgressRefused.public_message  # the address is the log's


def test_an_allowed_private_destination_still_connects(subscriber, make_endpoint, post_webhook):
    subscription_create(url=subscriber.url, event_types=["*"], allow_private=True)
    post_webhook(make_endpoint("shopify"))
    assert len(subscriber.requests) == 1
