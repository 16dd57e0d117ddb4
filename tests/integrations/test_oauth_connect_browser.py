"""Connect in Chromium: the customer's page → Connect → the fake provider's authorization page
(approves at once) → the callback → the credential's page, tokens stored and never shown."""

import pytest

from credentials.services import credential_create, credential_resolve
from integrations.services import integration_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT_SECRET = "app-client-secret-7f3a"


def test_connect_miro_in_the_browser(page, admin_login, acme, fake_provider):
    integration_create(
        customer=acme,
        provider_key="miro",
        config={"base_url": f"{fake_provider.url}/miro"},
        trusted=True,
    )
    credential_create(
        provider="miro",
        purpose="oauth_client",
        fields={"client_id": "app-client-id", "client_secret": CLIENT_SECRET},
    )
    admin_login()
    page.goto(f"{page.base_url}/admin/customers/customer/{acme.pk}/change/")
    page.click("text=Connect OAuth provider")
    page.click("input[type=submit][value='Connect Miro for acme']")
    page.wait_for_selector("text=Connected:")
    resolved = credential_resolve(provider="miro", customer=acme)
    assert page.url.endswith(f"/admin/credentials/credential/{resolved.credential_id}/change/")
    history = page.inner_text("#versions-group")
    assert "Current" in history
    content = page.content()
    for secret in (
        resolved.fields["access_token"],
        resolved.fields["refresh_token"],
        CLIENT_SECRET,
    ):
        assert secret not in content
    assert [e["path"] for e in fake_provider.journal()] == [
        "/miro/oauth/authorize",
        "/miro/v1/oauth/token",
    ]
