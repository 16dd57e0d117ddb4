"""Connect in the admin (integrations/oauth_connect.py): the authorization-code grant with PKCE
against the fake provider, driven through the Django test client. The state is single use and
expires, the fake refuses a wrong verifier, a refusal or a failing token endpoint is an admin
message, and no page shows a token or the client secret."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from credentials.models import CredentialAuditEntry
from credentials.services import credential_create, credential_resolve
from integrations import oauth_connect
from integrations.oauth_connect import SESSION_KEY, STATE_SECONDS, pkce_challenge
from integrations.services import integration_create

pytestmark = pytest.mark.django_db

CLIENT = {"client_id": "app-client-id", "client_secret": "app-client-secret-7f3a"}
CALLBACK = "http://testserver/admin/oauth/callback/"


@pytest.fixture
def miro(acme, fake_provider):
    """acme's Miro integration on the fake (trusted: the client secret may go there) and the
    app's client credential."""
    integration_create(
        customer=acme,
        provider_key="miro",
        config={"base_url": f"{fake_provider.url}/miro"},
        trusted=True,
    )

    def client(fields=CLIENT):
        return credential_create(provider="miro", purpose="oauth_client", fields=dict(fields))

    return client


def _start(admin_client, customer, provider="miro", scope=""):
    response = admin_client.post(
        f"/admin/oauth/connect/{customer.pk}/", {"provider": provider, "scope": scope}
    )
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def _authorize(url):
    """The operator's browser at the fake's authorization page: its redirect back."""
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK)
    return location.removeprefix("http://testserver")


def _page_text(response) -> str:
    return response.content.decode()


def _assert_no_secret(text, *secrets):
    for secret in secrets:
        assert secret not in text


def test_connect_stores_the_first_tokens_with_an_audit_entry(
    admin_client, admin_user, acme, miro, fake_provider
):
    miro()
    page = admin_client.get(f"/admin/oauth/connect/{acme.pk}/")
    assert "Connect Miro for acme" in _page_text(page)
    url = _start(admin_client, acme)
    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == f"{fake_provider.url}/miro/oauth/authorize"
    )
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT["client_id"]
    assert query["redirect_uri"] == CALLBACK and query["code_challenge_method"] == "S256"
    # The verifier stays in the server-side session; only its S256 challenge travels.
    [pending] = admin_client.session[SESSION_KEY]
    assert query["code_challenge"] == pkce_challenge(pending["verifier"])
    assert pending["verifier"] not in url and query["state"] == pending["state"]

    done = admin_client.get(_authorize(url), follow=True)
    text = _page_text(done)
    assert "Connected:" in text and "version 1" in text
    resolved = credential_resolve(provider="miro", customer=acme)
    assert resolved.fields["access_token"].startswith("at-")
    assert resolved.fields["refresh_token"].startswith("rt-")
    assert resolved.fields["expires_at"]
    assert (
        done.redirect_chain[-1][0]
        == f"/admin/credentials/credential/{resolved.credential_id}/change/"
    )
    _assert_no_secret(
        text,
        resolved.fields["access_token"],
        resolved.fields["refresh_token"],
        CLIENT["client_secret"],
    )
    audit = CredentialAuditEntry.objects.get(credential_id=resolved.credential_id)
    assert audit.action == "create" and audit.actor == f"user:{admin_user.username}"
    token_call = fake_provider.journal("/miro/v1/oauth/token")[-1]
    assert token_call["query"] == {}  # code, verifier and secret in the form body only
    form = parse_qs(token_call["body"])
    assert form["grant_type"] == ["authorization_code"]
    assert form["code_verifier"] == [pending["verifier"]]
    assert form["redirect_uri"] == [CALLBACK]
    assert admin_client.session[SESSION_KEY] == []  # used once


def test_connect_again_rotates_the_existing_credential(admin_client, acme, miro):
    miro()
    credential = credential_create(
        provider="miro", purpose="api", customer=acme, fields={"access_token": "old-token"}
    )
    admin_client.get(_authorize(_start(admin_client, acme)))
    resolved = credential_resolve(provider="miro", customer=acme)
    assert (resolved.credential_id, resolved.version) == (credential.pk, 2)
    audit = CredentialAuditEntry.objects.filter(credential=credential).first()
    assert (audit.action, audit.to_version) == ("rotate", 2)
    assert "Connect" in audit.reason


def _refused(response, fragment):
    assert response.status_code == 200
    text = _page_text(response)
    assert "Connect failed" in text and fragment in text, text[:3000]
    return text


def test_a_forged_state_is_refused(admin_client, acme, miro, fake_provider):
    miro()
    callback = _authorize(_start(admin_client, acme))
    forged = callback.replace("state=", "state=x")
    _refused(admin_client.get(forged, follow=True), "matches no Connect")
    assert fake_provider.journal("/miro/v1/oauth/token") == []


def test_a_state_is_used_once(admin_client, acme, miro, fake_provider):
    miro()
    callback = _authorize(_start(admin_client, acme))
    admin_client.get(callback)
    _refused(admin_client.get(callback, follow=True), "already used")
    assert len(fake_provider.journal("/miro/v1/oauth/token")) == 1
    assert credential_resolve(provider="miro", customer=acme).version == 1


def test_an_expired_state_is_refused(admin_client, acme, miro, fake_provider, monkeypatch):
    miro()
    callback = _authorize(_start(admin_client, acme))
    later = oauth_connect.time.time() + STATE_SECONDS + 1
    monkeypatch.setattr(oauth_connect.time, "time", lambda: later)
    _refused(admin_client.get(callback, follow=True), "expired")
    assert fake_provider.journal("/miro/v1/oauth/token") == []


def test_a_wrong_verifier_is_refused_by_the_fake(admin_client, acme, miro):
    miro()
    callback = _authorize(_start(admin_client, acme))
    session = admin_client.session
    session[SESSION_KEY][0]["verifier"] = "w" * 64
    session.save()
    text = _refused(admin_client.get(callback, follow=True), "refused the authorization code")
    assert "invalid_grant" in text
    assert not acme.credentials.filter(purpose="api").exists()


def test_access_denied_is_an_admin_message(admin_client, acme, miro):
    miro({"client_id": "deny-app", "client_secret": CLIENT["client_secret"]})
    callback = _authorize(_start(admin_client, acme))
    assert "error=access_denied" in callback
    _refused(admin_client.get(callback, follow=True), "declined (access_denied)")


def test_a_failing_token_endpoint_is_an_admin_message(admin_client, acme, miro, fake_provider):
    miro()
    callback = _authorize(_start(admin_client, acme))
    fake_provider.fault(path_prefix="/miro/v1/oauth/token", status=503)
    text = _refused(admin_client.get(callback, follow=True), "answered HTTP 503")
    _assert_no_secret(text, CLIENT["client_secret"])


def test_no_client_credential_is_an_admin_message(admin_client, acme, miro):
    response = admin_client.post(
        f"/admin/oauth/connect/{acme.pk}/", {"provider": "miro", "scope": ""}
    )
    assert response.status_code == 200
    assert "oauth_client" in _page_text(response)


def test_an_untrusted_base_url_gets_no_connect(admin_client, globex, fake_provider):
    integration_create(
        customer=globex, provider_key="miro", config={"base_url": f"{fake_provider.url}/miro"}
    )
    credential_create(provider="miro", purpose="oauth_client", fields=dict(CLIENT))
    response = admin_client.post(f"/admin/oauth/connect/{globex.pk}/", {"provider": "miro"})
    assert response.status_code == 200 and "trusted" in _page_text(response)


def test_shopify_connects_on_the_shops_host(admin_client, acme, fake_provider):
    integration_create(
        customer=acme,
        provider_key="shopify",
        config={"shop": "fake-shop", "base_url": f"{fake_provider.url}/shopify"},
        trusted=True,
    )
    credential_create(provider="shopify", purpose="oauth_client", fields=dict(CLIENT))
    url = _start(admin_client, acme, provider="shopify", scope="write_orders")
    assert url.startswith(f"{fake_provider.url}/shopify/admin/oauth/authorize?")
    assert parse_qs(urlsplit(url).query)["scope"] == ["write_orders"]
    admin_client.get(_authorize(url))
    assert credential_resolve(provider="shopify", customer=acme).fields["refresh_token"]


def test_staff_without_the_permissions_is_refused(client, django_user_model, acme):
    django_user_model.objects.create_user("viewer", password="pw-12345678", is_staff=True)
    client.login(username="viewer", password="pw-12345678")
    assert client.get(f"/admin/oauth/connect/{acme.pk}/").status_code == 403
    assert client.get("/admin/oauth/callback/?state=x&code=y").status_code == 403


def test_the_customer_page_links_to_connect(admin_client, acme):
    page = admin_client.get(f"/admin/customers/customer/{acme.pk}/change/")
    assert f"/admin/oauth/connect/{acme.pk}/" in _page_text(page)


def test_the_fake_refuses_a_code_without_its_verifier(fake_provider):
    verifier = "v" * 50
    answer = requests.get(
        f"{fake_provider.url}/miro/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": "app",
            "redirect_uri": "http://example.test/cb",
            "state": "s",
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://example.test/cb",
        "client_id": "app",
        "client_secret": "s",
        "code_verifier": "x" * 50,
    }
    token_url = f"{fake_provider.url}/miro/v1/oauth/token"
    refused = requests.post(token_url, data=form, timeout=5)
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})
    # The code is spent by the refused attempt too.
    again = requests.post(token_url, data={**form, "code_verifier": verifier}, timeout=5)
    assert again.status_code == 400
