"""One vault: a subscription's signing secrets are versions of a ``subscription_signing``
credential owned by the subscription. They survive a master key rotation done as the README
says, are audited, expire and are revoked like every credential, and cannot be reached, rotated
or used anywhere but through their subscription."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from credentials.crypto import Keyring, generate_key
from credentials.exceptions import CredentialConflict
from credentials.models import Credential, CredentialAuditEntry, CredentialVersion
from credentials.services import (
    credential_create,
    credential_resolve,
    credential_rotate,
    credential_versions_expire,
)
from credentials.services import resolution as credential_resolution
from integrations.models import Delivery
from webhooks.models import InboundEvent, Subscription
from webhooks.selectors import _signing_secrets, outbound_message
from webhooks.services import endpoint_create, subscription_create, subscription_rotate_secret

pytestmark = pytest.mark.django_db

K1, K2 = generate_key(), generate_key()
Audit = CredentialAuditEntry.Action
State = CredentialVersion.State


@pytest.fixture
def master_k1(settings):
    settings.SWITCHYARD_ENCRYPTION_KEYS = [K1]
    settings.SWITCHYARD_USES_DEVELOPMENT_KEY = False
    return settings


def _verify(secret: str, headers: dict, body: bytes) -> dict:
    return Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})


def _secrets(subscription: Subscription) -> list[str]:
    subscription.refresh_from_db()
    return [secret for _, secret in _signing_secrets(subscription)]


def _states(subscription: Subscription) -> dict[int, str]:
    subscription.refresh_from_db()
    return dict(subscription.signing_credential.versions.values_list("version", "state"))


# --- Done when: the master key is rotated as the README says, fan-out still verifies ------------


def test_fan_out_verifies_after_the_master_key_is_rotated_as_the_readme_says(
    master_k1, subscriber, make_endpoint, post_webhook
):
    subscription, old = subscription_create(
        url=subscriber.url, event_types=["*"], allow_private=True
    )
    secret = subscription_rotate_secret(subscription=subscription, grace_seconds=3600)
    id1, id2 = Keyring([K1]).primary_id, Keyring([K2]).primary_id

    # README: put the new key first, run credentials_reencrypt, then remove the old key.
    master_k1.SWITCHYARD_ENCRYPTION_KEYS = [K2, K1]
    report = StringIO()
    call_command("credentials_reencrypt", stdout=report)
    report = report.getvalue()
    assert "Re-encrypted 2 versions." in report
    assert f"key {id2} (primary): 2 versions, 2 of them subscription signing secrets" in report
    assert f"key {id1} (fallback): 0 versions" in report
    assert set(
        CredentialVersion.objects.filter(
            credential__purpose=Credential.Purpose.SUBSCRIPTION_SIGNING
        ).values_list("key_id", flat=True)
    ) == {id2}
    master_k1.SWITCHYARD_ENCRYPTION_KEYS = [K2]

    post_webhook(make_endpoint("shopify"))
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED
    [(headers, body)] = subscriber.requests
    assert _verify(secret, headers, body) == InboundEvent.objects.get().envelope
    assert _verify(old, headers, body)["type"] == "shopify.products.update"  # still in grace
    assert len(headers["webhook-signature"].split(" ")) == 2
    with pytest.raises(WebhookVerificationError):
        _verify("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", headers, body)


# --- audit, grace, revocation, last use ---------------------------------------------------------


def test_create_and_rotate_secret_are_audited_with_their_actor(api, api_key):
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"], "allow_private": True}
    created = api.post("/api/v1/subscriptions/", body, format="json").json()
    subscription = Subscription.objects.get(pk=created["id"])
    credential = subscription.signing_credential
    assert (credential.provider, credential.purpose, credential.scope_key) == (
        "standard_webhooks",
        "subscription_signing",
        f"subscription:{subscription.pk}",
    )
    rotated = api.post(
        f"/api/v1/subscriptions/{subscription.pk}/rotate-secret/",
        {"grace_seconds": 60},
        format="json",
    )
    assert rotated.status_code == 200, rotated.content
    actor = f"api-key:{api_key[0].name}"
    entries = list(
        credential.audit_entries.order_by("pk").values_list(
            "action", "from_version", "to_version", "actor"
        )
    )
    assert entries == [(Audit.CREATE, None, 1, actor), (Audit.ROTATE, 1, 2, actor)]
    current, previous = rotated.json()["secret_versions"]
    assert (current["version"], current["state"], current["expires_at"]) == (2, "current", None)
    assert (previous["version"], previous["state"]) == (1, "previous")
    assert previous["grace_until"] == previous["expires_at"] is not None
    assert current["hint"].startswith("…") and rotated.json()["secret"][-4:] not in current["hint"]


def test_admin_rotation_is_audited_as_the_admin_user(admin_client, admin_user):
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    response = admin_client.post(
        f"/admin/webhooks/subscription/{subscription.pk}/rotate/", {"grace_seconds": "0"}
    )
    assert response.status_code == 200
    entry = subscription.signing_credential.audit_entries.get(action=Audit.ROTATE)
    assert entry.actor == f"user:{admin_user.get_username()}"
    assert _states(subscription) == {1: State.REVOKED, 2: State.CURRENT}


def test_previous_secret_signs_until_its_grace_ends_then_upkeep_revokes_it():
    subscription, old = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    new = subscription_rotate_secret(subscription=subscription, grace_seconds=3600)
    assert _secrets(subscription) == [new, old]  # current first, then the one in grace
    previous = subscription.signing_credential.versions.get(version=1)
    assert previous.state == State.PREVIOUS
    assert previous.grace_until > timezone.now() + timedelta(minutes=59)

    assert credential_versions_expire() == 0
    CredentialVersion.objects.filter(pk=previous.pk).update(
        grace_until=timezone.now() - timedelta(seconds=1)
    )
    assert _secrets(subscription) == [new]  # past its grace: no longer signs
    assert credential_versions_expire() == 1
    previous.refresh_from_db()
    assert (previous.state, bytes(previous.ciphertext), previous.key_id) == (State.REVOKED, b"", "")
    expired = subscription.signing_credential.audit_entries.get(action=Audit.EXPIRE)
    assert (expired.from_version, expired.actor) == (1, "system")


def test_a_rotation_bounds_every_old_secret_and_zero_grace_stops_them_all():
    subscription, first = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    subscription_rotate_secret(subscription=subscription, grace_seconds=3600)
    third = subscription_rotate_secret(subscription=subscription, grace_seconds=60)
    versions = {v.version: v for v in subscription.signing_credential.versions.all()}
    soon = timezone.now() + timedelta(seconds=61)
    assert versions[1].grace_until <= soon and versions[2].grace_until <= soon  # none extended
    assert len(_secrets(subscription)) == 3 and _secrets(subscription)[0] == third

    fourth = subscription_rotate_secret(subscription=subscription, grace_seconds=0)
    assert _secrets(subscription) == [fourth]
    assert _states(subscription) == {
        1: State.REVOKED,
        2: State.REVOKED,
        3: State.REVOKED,
        4: State.CURRENT,
    }
    revoked = subscription.signing_credential.audit_entries.filter(action=Audit.REVOKE)
    assert sorted(revoked.values_list("from_version", flat=True)) == [1, 2]
    assert first not in _secrets(subscription)


def test_a_send_marks_the_versions_it_signed_with_as_used(
    subscriber, make_endpoint, post_webhook, monkeypatch
):
    # Earlier tests' marks (same ids, rolled back rows) must not count as this test's.
    monkeypatch.setattr(credential_resolution, "_last_marked", {})
    cache.clear()
    subscription, _ = subscription_create(url=subscriber.url, event_types=["*"], allow_private=True)
    subscription_rotate_secret(subscription=subscription, grace_seconds=3600)
    versions = subscription.signing_credential.versions
    assert list(versions.values_list("last_used_at", flat=True)) == [None, None]
    post_webhook(make_endpoint("shopify"))
    used = dict(versions.values_list("version", "last_used_at"))
    assert used[1] is not None and used[2] is not None
    # At most one write a minute per version: a second message keeps the first time.
    event = InboundEvent.objects.get()
    assert outbound_message(
        subscription_id=subscription.pk, event_id=event.pk, customer_id=event.endpoint.customer_id
    )
    assert dict(versions.values_list("version", "last_used_at")) == used


def test_deleting_a_subscription_revokes_its_secrets():
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    credential = subscription.signing_credential
    subscription.delete()
    credential.refresh_from_db()
    assert not credential.enabled
    assert set(credential.versions.values_list("state", "key_id")) == {(State.REVOKED, "")}
    assert credential.audit_entries.filter(action=Audit.REVOKE).exists()


def test_changing_a_subscriptions_customer_in_the_admin_moves_its_credential(
    admin_client, acme, globex
):
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True, customer=acme
    )
    assert subscription.signing_credential.customer == acme
    response = admin_client.post(
        f"/admin/webhooks/subscription/{subscription.pk}/change/",
        {
            "url": subscription.url,
            "event_types": '["*"]',
            "customer": globex.pk,
            "allow_private": "on",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content
    subscription.refresh_from_db()
    assert subscription.customer == globex
    assert subscription.signing_credential.customer == globex


# --- reachable only through the subscription ----------------------------------------------------


def test_credentials_api_neither_lists_nor_reaches_them(api, acme):
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True, customer=acme
    )
    own = credential_create(
        provider="shopify", purpose="webhook_signing", customer=acme, fields={"secret": "s"}
    )
    hidden = subscription.signing_credential.pk
    listed = [c["id"] for c in api.get("/api/v1/credentials/").json()["results"]]
    assert listed == [own.pk]
    assert api.get(f"/api/v1/credentials/{hidden}/").status_code == 404
    rotate = api.post(
        f"/api/v1/credentials/{hidden}/rotate/", {"fields": {"secret": "x"}}, format="json"
    )
    assert rotate.status_code == 404
    assert api.post(f"/api/v1/credentials/{hidden}/revoke/", {}, format="json").status_code == 404
    create = api.post(
        "/api/v1/credentials/",
        {
            "provider": "standard_webhooks",
            "purpose": "subscription_signing",
            "customer": "acme",
            "fields": {"secret": "whsec_x"},
        },
        format="json",
    )
    assert create.status_code == 400
    assert "purpose" in create.json()["errors"]
    assert _states(subscription) == {1: State.CURRENT}


def test_the_vault_refuses_to_rotate_them_except_through_the_subscription(admin_client):
    subscription, secret = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True
    )
    credential = subscription.signing_credential
    with pytest.raises(CredentialConflict, match="rotate-secret"):
        credential_rotate(credential=credential, fields={"secret": "whsec_x"})
    with pytest.raises(CommandError, match="rotate-secret"):
        call_command("credentials_rotate", credential.pk, stdin=StringIO('{"secret": "x"}'))
    page = admin_client.get(f"/admin/credentials/credential/{credential.pk}/change/")
    assert page.status_code == 200 and b"rotate-link" not in page.content
    refused = admin_client.post(
        f"/admin/credentials/credential/{credential.pk}/rotate/",
        {"grace_seconds": "0", "reason": ""},
        follow=True,
    )
    assert b"rotate it from the subscription" in refused.content
    assert _secrets(subscription) == [secret]
    assert not credential.audit_entries.filter(action=Audit.ROTATE).exists()
    add = admin_client.get("/admin/credentials/credential/add/")
    assert b"subscription_signing" not in add.content


def test_a_webhook_endpoint_cannot_use_one(api, admin_client, acme):
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True, customer=acme
    )
    credential = subscription.signing_credential
    with pytest.raises(ValidationError, match="webhook_signing"):
        endpoint_create(customer=acme, provider="standard_webhooks", credential=credential)
    body = {"customer": "acme", "provider": "standard_webhooks", "credential": credential.pk}
    response = api.post("/api/v1/webhook-endpoints/", body, format="json")
    assert response.status_code == 400
    assert "credential" in response.json()["errors"]
    form = admin_client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"customer": acme.pk, "provider": "standard_webhooks", "credential": credential.pk},
    )
    assert form.status_code == 200  # the form again, with the error
    assert b"Select a valid choice" in form.content
    assert not credential.webhook_endpoints.exists()


def test_they_are_never_resolved_for_a_call(acme):
    subscription_create(
        url="http://127.0.0.1:9/x", event_types=["*"], allow_private=True, customer=acme
    )
    with pytest.raises(ValueError, match="never resolved"):
        credential_resolve(
            provider="standard_webhooks", customer=acme, purpose="subscription_signing"
        )
