import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from credentials.models import Credential, CredentialVersion
from credentials.services import credential_resolve
from tests.credentials.conftest import TRELLO_FIELDS

NEW_TOKEN = "z" * 64


@pytest.fixture
def staff(django_user_model):
    """A staff user who may view and change credentials, but not rotate them (yet)."""
    user = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_credential", "change_credential", "add_credential"]
        )
    )
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def _rotate_url(credential):
    return f"/admin/credentials/credential/{credential.pk}/rotate/"


def _rotation_post(**overrides):
    return {
        "field_api_key": "y" * 32,
        "field_token": NEW_TOKEN,
        "grace_seconds": "3600",
        "reason": "quarterly",
        "confirm": "on",
        **overrides,
    }


def test_rotation_page_needs_the_permission(staff, trello_acme):
    assert staff.get(_rotate_url(trello_acme)).status_code == 403
    assert staff.post(_rotate_url(trello_acme), _rotation_post()).status_code == 403
    change = staff.get(f"/admin/credentials/credential/{trello_acme.pk}/change/")
    assert change.status_code == 200
    assert b"Rotate secret" not in change.content
    assert trello_acme.versions.count() == 1


def test_rotation_through_the_admin(staff, trello_acme, acme):
    staff.user.user_permissions.add(Permission.objects.get(codename="rotate_credential"))
    change = staff.get(f"/admin/credentials/credential/{trello_acme.pk}/change/")
    assert _rotate_url(trello_acme).encode() in change.content

    page = staff.get(_rotate_url(trello_acme))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="password" name="field_token"' in html
    assert 'name="grace_seconds"' in html and 'name="confirm"' in html

    response = staff.post(_rotate_url(trello_acme), _rotation_post())
    assert response.status_code == 302, response.content.decode()
    assert credential_resolve(provider="trello", customer=acme).fields["token"] == NEW_TOKEN
    assert {v.version: v.state for v in trello_acme.versions.all()} == {
        1: "previous",
        2: "current",
    }
    entry = trello_acme.audit_entries.first()
    assert (entry.actor, entry.action, entry.from_version, entry.to_version, entry.reason) == (
        "user:operator",
        "rotate",
        1,
        2,
        "quarterly",
    )
    log = LogEntry.objects.get(object_id=str(trello_acme.pk))
    assert "Rotated to version 2" in log.get_change_message()


@pytest.mark.parametrize(
    ("overrides", "error_field"),
    [
        ({"confirm": ""}, "confirm"),
        ({"grace_seconds": "-1"}, "grace_seconds"),
        ({"field_token": ""}, "field_token"),
    ],
)
def test_rotation_form_errors_never_echo_the_secret(staff, trello_acme, overrides, error_field):
    staff.user.user_permissions.add(Permission.objects.get(codename="rotate_credential"))
    response = staff.post(_rotate_url(trello_acme), _rotation_post(**overrides))
    assert response.status_code == 200
    assert error_field in response.context["form"].errors
    assert NEW_TOKEN.encode() not in response.content
    assert trello_acme.versions.count() == 1


def test_rotating_a_revoked_credential_shows_the_conflict(staff, trello_acme):
    from credentials.services import credential_revoke

    staff.user.user_permissions.add(Permission.objects.get(codename="rotate_credential"))
    credential_revoke(credential=trello_acme, include_current=True)
    response = staff.post(_rotate_url(trello_acme), _rotation_post())
    assert response.status_code == 200
    assert b"is revoked" in response.content


def test_create_through_the_admin(staff, acme):
    start = staff.get("/admin/credentials/credential/add/")
    assert start.status_code == 200 and b'name="provider"' in start.content
    url = "/admin/credentials/credential/add/?provider=shopify&purpose=webhook_signing"
    form = staff.get(url).content.decode()
    assert 'type="password" name="field_secret"' in form
    response = staff.post(url, {"customer": acme.pk, "field_secret": "shpss_canary", "label": "x"})
    assert response.status_code == 302, response.content.decode()
    credential = Credential.objects.get(provider="shopify")
    assert credential.customer == acme and credential.purpose == "webhook_signing"
    assert credential.audit_entries.get().actor == "user:operator"
    missing = staff.post(url, {"customer": acme.pk, "field_secret": ""})
    assert "field_secret" in missing.context["form"].errors


def test_create_step_one_refuses_a_purpose_the_provider_lacks(staff):
    response = staff.get("/admin/credentials/credential/add/?provider=miro&purpose=webhook_signing")
    assert b"takes no webhook_signing credential" in response.content


def test_list_and_history_show_hints_never_secrets(admin_client, trello_acme):
    from credentials.services import credential_rotate

    credential_rotate(credential=trello_acme, fields={**TRELLO_FIELDS, "token": NEW_TOKEN})
    listing = admin_client.get("/admin/credentials/credential/").content.decode()
    current = trello_acme.versions.get(state=CredentialVersion.State.CURRENT)
    assert f"v2 {current.hint}" in listing
    assert "v1 until" in listing
    change = admin_client.get(f"/admin/credentials/credential/{trello_acme.pk}/change/").content
    audit = admin_client.get("/admin/credentials/credentialauditentry/").content
    for page in (listing.encode(), change, audit):
        assert NEW_TOKEN.encode() not in page
        assert TRELLO_FIELDS["token"].encode() not in page
    assert current.hint.encode() in change


@pytest.mark.parametrize(
    "lookup", ["versions__ciphertext__startswith", "versions__fingerprint", "versions__secret"]
)
def test_secret_lookups_are_refused(admin_client, trello_acme, lookup):
    response = admin_client.get(f"/admin/credentials/credential/?{lookup}=a")
    assert response.status_code in (302, 400)
    assert response.status_code == 400 or "e=1" in response["Location"]


def test_audit_log_is_read_only(admin_client, trello_acme):
    entry = trello_acme.audit_entries.get()
    change = admin_client.post(
        f"/admin/credentials/credentialauditentry/{entry.pk}/change/", {"reason": "x"}
    )
    assert change.status_code == 403
    assert admin_client.get("/admin/credentials/credentialauditentry/add/").status_code == 403


def test_revoke_previous_action_confirms_then_revokes(staff, trello_acme):
    from credentials.services import credential_rotate

    credential_rotate(credential=trello_acme, fields={**TRELLO_FIELDS, "token": NEW_TOKEN})
    changelist = "/admin/credentials/credential/"
    selection = {"action": "revoke_previous_selected", "_selected_action": [trello_acme.pk]}
    assert b"revoke_previous_selected" not in staff.get(changelist).content  # needs the permission
    staff.user.user_permissions.add(Permission.objects.get(codename="rotate_credential"))
    confirm = staff.post(changelist, selection)
    assert b"Revoke the previous versions of these credentials now?" in confirm.content
    assert trello_acme.versions.get(version=1).state == "previous"
    done = staff.post(changelist, {**selection, "post": "yes"}, follow=True)
    assert b"Revoked 1 version." in done.content
    assert {v.version: v.state for v in trello_acme.versions.all()} == {
        1: "revoked",
        2: "current",
    }
