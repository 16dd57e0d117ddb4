import pytest

from credentials.services import credential_create, credential_resolve

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_SECRET = "shpss_" + "r" * 32


def test_rotate_a_webhook_secret_through_the_rotation_page(page, admin_login, acme):
    credential = credential_create(
        provider="shopify",
        purpose="webhook_signing",
        customer=acme,
        fields={"secret": "shpss_" + "o" * 32},
    )
    admin_login()
    page.goto(f"{page.base_url}/admin/credentials/credential/{credential.pk}/change/")
    page.click("text=Rotate secret")
    page.wait_for_selector("#credential-rotate-form")
    assert page.get_attribute("input[name=field_secret]", "type") == "password"
    page.fill("input[name=field_secret]", NEW_SECRET)
    page.fill("input[name=grace_seconds]", "3600")
    page.fill("input[name=reason]", "Shopify client secret rotated")
    page.check("input[name=confirm]")
    page.click("input[type=submit][value='Rotate secret']")
    page.wait_for_selector("text=Rotated to version 2")
    assert page.url.endswith(f"/admin/credentials/credential/{credential.pk}/change/")
    history = page.inner_text("#versions-group")
    assert "Current" in history and "Previous (in grace)" in history
    assert NEW_SECRET not in page.content()
    resolved = credential_resolve(provider="shopify", customer=acme, purpose="webhook_signing")
    assert resolved.fields == {"secret": NEW_SECRET}
    assert credential.audit_entries.first().reason == "Shopify client secret rotated"
