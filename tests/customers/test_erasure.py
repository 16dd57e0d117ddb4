"""Erasure of a customer (issue 21, item 6): canary secrets and payloads planted in every kind of
row are found nowhere afterwards, in any column of any table; what audit needs stays; another
customer's data is untouched; running it again changes nothing; an unknown slug is refused."""

import base64
import uuid
from io import StringIO

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command

from credentials.models import Credential, CredentialAuditEntry, CredentialVersion
from credentials.services import version_decrypt
from customers.models import ApiKey, ApiKeyAuditEntry
from customers.services import api_key_create
from integrations.deliveries.models import Delivery, DeliveryAttempt
from integrations.models import Integration
from tests.credentials.test_canary import _database_dump
from tests.customers.lifecycle_data import plant
from webhooks.models import InboundEvent, Subscription, WebhookEndpoint

pytestmark = pytest.mark.django_db


def forms(text: str) -> list[bytes]:
    raw = text.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw), raw.hex().encode()]


def erase(slug: str) -> str:
    out = StringIO()
    call_command("customer_erase", slug, stdout=out)
    return out.getvalue()


def plaintexts() -> list[str]:
    """Every secret the vault can still decrypt."""
    return [
        str(version_decrypt(version))
        for version in CredentialVersion.objects.exclude(ciphertext=b"")
    ]


@pytest.fixture
def canaries(acme, globex):
    mine = {"secret": f"sec{uuid.uuid4().hex}", "marker": f"pay{uuid.uuid4().hex}"}
    theirs = {"secret": f"sec{uuid.uuid4().hex}", "marker": f"pay{uuid.uuid4().hex}"}
    return (
        mine | {"rows": plant(acme, **mine)},
        theirs | {"rows": plant(globex, **theirs)},
    )


def test_canaries_of_an_erased_customer_are_found_nowhere(acme, globex, canaries):
    mine, theirs = canaries
    dump = _database_dump()
    assert mine["marker"].encode() in dump  # the search looks where the data is
    assert any(mine["secret"] in text for text in plaintexts())

    output = erase("acme")

    assert "Customer acme erased." in output
    dump = _database_dump()
    for text in (mine["marker"], mine["secret"], mine["rows"]["subscription_secret"]):
        leaks = [form for form in forms(text) if form in dump]
        assert not leaks, f"a form of {text} survived the erasure"
        assert not any(text in plain for plain in plaintexts())
    # The other customer's data is all there, and its secrets still decrypt.
    assert theirs["marker"].encode() in dump
    assert any(theirs["secret"] in text for text in plaintexts())
    assert any(theirs["rows"]["subscription_secret"] in text for text in plaintexts())
    assert Integration.objects.get(customer=globex).active
    assert not ApiKey.objects.get(pk=theirs["rows"]["api_key"].pk).is_revoked
    assert all(d.input for d in Delivery.objects.filter(customer=globex))


def test_what_audit_needs_stays(acme, canaries):
    mine, _ = canaries
    rows = mine["rows"]

    erase("acme")

    acme.refresh_from_db()
    assert not acme.active
    deliveries = {d.pk: d for d in Delivery.objects.filter(customer=acme)}
    assert set(deliveries) == {d.pk for d in rows["deliveries"]}
    # Pending and dead ones are cancelled (nothing of the customer is sent any more); a dead
    # letter keeps its reason.
    assert {d.status for d in deliveries.values()} == {"succeeded", "cancelled"}
    assert {d.dead_reason for d in deliveries.values()} == {"", "non_retryable"}
    assert all(d.input == {} and d.result is None and not d.last_error for d in deliveries.values())
    assert {d.action for d in deliveries.values()} == {d.action for d in rows["deliveries"]}
    attempts = DeliveryAttempt.objects.filter(delivery__customer=acme)
    assert attempts.count() == 2
    assert {(a.outcome, a.request_method, a.response_status) for a in attempts} == {
        ("success", "POST", 200)
    }
    event = InboundEvent.objects.get(pk=rows["event"].pk)
    assert (event.status, event.type, bytes(event.body), event.envelope) == (
        "processed",
        "trello.card.moved",
        b"",
        None,
    )
    assert not WebhookEndpoint.objects.get(pk=rows["endpoint"].pk).active
    assert not Subscription.objects.get(pk=rows["subscription"].pk).active
    # Audited where each kind of secret is: every version revoked, the key revoked.
    for credential in Credential.objects.filter(customer=acme):
        assert not credential.enabled
        assert set(credential.versions.values_list("state", flat=True)) == {"revoked"}
        assert CredentialAuditEntry.objects.filter(
            credential=credential, action="revoke", reason="customer acme erased", actor="command"
        ).exists()
    assert ApiKeyAuditEntry.objects.filter(
        api_key=rows["api_key"], action="revoke", actor="command"
    ).exists()


def test_erasing_again_changes_nothing(acme, canaries):
    erase("acme")
    dump = _database_dump()
    audit = CredentialAuditEntry.objects.count(), ApiKeyAuditEntry.objects.count()

    output = erase("acme")

    assert "erased" not in output.replace("Customer acme erased.", "")
    assert _database_dump() == dump
    assert (CredentialAuditEntry.objects.count(), ApiKeyAuditEntry.objects.count()) == audit


def test_an_unknown_slug_is_refused(acme):
    with pytest.raises(CommandError, match="No customer with slug 'nobody'"):
        erase("nobody")
    acme.refresh_from_db()
    assert acme.active


def test_a_key_shared_with_another_customer_only_loses_the_erased_one(acme, globex):
    shared, _ = api_key_create(name="shared", customers=[acme, globex])

    erase("acme")

    shared.refresh_from_db()
    assert not shared.is_revoked
    assert list(shared.customers.all()) == [globex]
    assert shared.customer_limited


def test_a_delivery_in_flight_is_left_to_its_worker_and_erased_next_time(acme, canaries):
    mine, _ = canaries
    busy = mine["rows"]["deliveries"][2]
    Delivery.objects.filter(pk=busy.pk).update(status="in_flight")

    output = erase("acme")

    assert "integrations_delivery: 1 in flight" in output
    assert Delivery.objects.get(pk=busy.pk).input != {}
    Delivery.objects.filter(pk=busy.pk).update(status="succeeded")
    output = erase("acme")
    assert "integrations_delivery: erased 1" in output
    assert mine["marker"].encode() not in _database_dump()


def test_the_admin_action_confirms_first_and_records_the_erasure(admin_client, acme, canaries):
    mine, _ = canaries
    action = {"action": "erase_customers", "_selected_action": [acme.pk]}

    confirm = admin_client.post("/admin/customers/customer/", action)

    assert confirm.status_code == 200
    assert b"Erase the data of these customers?" in confirm.content
    assert mine["marker"].encode() in _database_dump()

    done = admin_client.post("/admin/customers/customer/", {**action, "post": "yes"}, follow=True)

    assert b"Erased the data of 1 customer." in done.content
    assert mine["marker"].encode() not in _database_dump()
    entry = LogEntry.objects.get(object_id=str(acme.pk), content_type__model="customer")
    assert "Erased the customer's data" in entry.get_change_message()
    assert CredentialAuditEntry.objects.filter(actor="user:admin", action="revoke").exists()


def test_a_version_revoked_before_revocation_emptied_ciphertexts_is_destroyed_too(acme):
    secret = f"sec{uuid.uuid4().hex}"
    plant(acme, secret=secret, marker=f"pay{uuid.uuid4().hex}")
    # A row from before revocation emptied the ciphertext: revoked, its secret still stored.
    CredentialVersion.objects.filter(credential__customer=acme, credential__provider="http").update(
        state="revoked"
    )
    assert any(secret in text for text in plaintexts())

    erase("acme")

    assert not CredentialVersion.objects.filter(credential__customer=acme).exclude(ciphertext=b"")
    assert not any(secret in text for text in plaintexts())
