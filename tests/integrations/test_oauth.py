"""OAuth 2.0 token refresh against the fake provider: before expiry, once on a 401, once for
several workers at the same time, invalid_grant as a re-authorise dead letter, and secrets kept
out of every record, answer and log line."""

import hashlib
import json
import logging
import sys
import threading
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from credentials.models import Credential, CredentialAuditEntry, CredentialVersion
from credentials.services import credential_create, credential_resolve
from integrations.deliveries.services import deliveries_attempt, delivery_create
from integrations.models import Delivery, DeliveryAttempt, Integration
from integrations.oauth import oauth_token_fresh
from integrations.services import integration_check, integration_create
from tests.integrations.oauth_refresh_worker import RESULT_PREFIX
from tests.processes import ProcessStack
from tests.test_canary_masking import _canary, _leaks

CLIENT = {"client_id": "app-client-id", "client_secret": "app-client-secret-7f3a"}
MOVE = {"board_id": "uXjVOD6LSME=", "item_id": "3458764517517819000", "parent_id": None}
TOKEN_PATHS = {"miro": "/miro/v1/oauth/token", "shopify": "/shopify/admin/oauth/access_token"}


def _at(**delta) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


@pytest.fixture
def oauth_client(db):
    def create(provider="miro", fields=CLIENT):
        return credential_create(provider=provider, purpose="oauth_client", fields=dict(fields))

    return create


@pytest.fixture
def miro_at(acme, fake_provider):
    """acme's Miro integration on the fake server (trusted: the app's client secret may go
    there) and a factory of acme's token credential."""
    integration_create(
        customer=acme,
        provider_key="miro",
        config={"base_url": f"{fake_provider.url}/miro"},
        trusted=True,
    )

    def tokens(access="at-seed", refresh="rt-seed", expires_at=None):
        fields = {"access_token": access, "refresh_token": refresh}
        fields["expires_at"] = expires_at or _at(hours=1)
        return credential_create(provider="miro", purpose="api", customer=acme, fields=fields)

    return tokens


def _move(acme):
    delivery, _ = delivery_create(
        api_key=None, customer=acme.slug, action="miro.move_item", input=MOVE
    )
    deliveries_attempt(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    return delivery


def _calls(fake_provider):
    return [(e["method"], e["path"]) for e in fake_provider.journal()]


@pytest.mark.django_db
def test_a_token_about_to_expire_is_refreshed_first(acme, miro_at, oauth_client, fake_provider):
    oauth_client()
    credential = miro_at(expires_at=_at(minutes=1))
    delivery = _move(acme)
    assert delivery.status == Delivery.Status.SUCCEEDED, delivery.last_error
    token_call, patch = fake_provider.journal()
    assert (token_call["method"], token_call["path"]) == ("POST", TOKEN_PATHS["miro"])
    # RFC 6749 §6 in the form body, nothing secret in the URL.
    assert token_call["query"] == {}
    assert "grant_type=refresh_token" in token_call["body"]
    assert "refresh_token=rt-seed" in token_call["body"]
    fresh = credential_resolve(provider="miro", customer=acme)
    assert fresh.version == 2
    assert fresh.fields["access_token"].startswith("at-")
    assert fresh.fields["refresh_token"].startswith("rt-")  # rotated
    assert patch["headers"]["Authorization"] == f"Bearer {fresh.fields['access_token']}"
    previous = CredentialVersion.objects.get(credential=credential, version=1)
    assert previous.state == CredentialVersion.State.PREVIOUS
    assert previous.grace_until <= timezone.now() + timedelta(minutes=6)
    audit = CredentialAuditEntry.objects.filter(credential=credential).first()
    assert (audit.action, audit.actor, audit.to_version) == ("rotate", "system", 2)
    assert DeliveryAttempt.objects.get(delivery=delivery).credential_version == 2


@pytest.mark.django_db
def test_a_valid_token_is_not_refreshed(acme, miro_at, oauth_client, fake_provider):
    oauth_client()
    miro_at(expires_at=_at(hours=1))
    assert _move(acme).status == Delivery.Status.SUCCEEDED
    assert [path for _, path in _calls(fake_provider)] == [
        f"/miro/v2/boards/{MOVE['board_id']}/items/{MOVE['item_id']}"
    ]


@pytest.mark.django_db
def test_a_401_refreshes_once_then_succeeds(acme, miro_at, oauth_client, fake_provider):
    oauth_client()
    miro_at(access="expired-at-seed", expires_at=_at(hours=1))  # the provider disagrees
    delivery = _move(acme)
    assert delivery.status == Delivery.Status.SUCCEEDED, delivery.last_error
    assert [method for method, _ in _calls(fake_provider)] == ["PATCH", "POST", "PATCH"]
    assert [e["status"] for e in fake_provider.journal()] == [401, 200, 200]
    assert credential_resolve(provider="miro", customer=acme).version == 2


@pytest.mark.django_db
def test_invalid_grant_dead_letters_with_a_reauthorise_reason(
    acme, miro_at, oauth_client, fake_provider
):
    oauth_client()
    miro_at(refresh="revoked-rt", expires_at=_at(minutes=-5))
    delivery = _move(acme)
    assert delivery.status == Delivery.Status.DEAD
    assert delivery.dead_reason == Delivery.DeadReason.AUTH_FAILED
    assert "re-authorise" in delivery.last_error
    assert _calls(fake_provider) == [("POST", TOKEN_PATHS["miro"])]  # the call never went out
    assert credential_resolve(provider="miro", customer=acme).version == 1
    # The reason names what to do, never the refresh token or the client secret.
    [attempt] = DeliveryAttempt.objects.filter(delivery=delivery)
    stored = json.dumps(
        [
            delivery.last_error,
            [str(getattr(attempt, f.attname)) for f in DeliveryAttempt._meta.concrete_fields],
        ]
    )
    assert "revoked-rt" not in stored and CLIENT["client_secret"] not in stored


@pytest.mark.django_db
def test_no_oauth_client_is_a_configuration_dead_letter(acme, miro_at, fake_provider):
    miro_at(expires_at=_at(minutes=-5))
    delivery = _move(acme)
    assert delivery.status == Delivery.Status.DEAD
    assert delivery.dead_reason == Delivery.DeadReason.CONFIGURATION
    assert "oauth_client" in delivery.last_error
    assert fake_provider.journal() == []


@pytest.mark.django_db
def test_the_client_secret_goes_only_to_own_hosts_unless_trusted(acme, oauth_client, fake_provider):
    oauth_client()
    integration_create(
        customer=acme, provider_key="miro", config={"base_url": f"{fake_provider.url}/miro"}
    )
    credential_create(
        provider="miro",
        purpose="api",
        customer=acme,
        fields={"access_token": "a", "refresh_token": "r", "expires_at": _at(minutes=-1)},
    )
    delivery = _move(acme)
    assert delivery.dead_reason == Delivery.DeadReason.CONFIGURATION
    assert "trusted" in delivery.last_error
    assert fake_provider.journal() == []


@pytest.mark.django_db
def test_shopify_expiring_offline_token_is_refreshed(acme, oauth_client, fake_provider):
    oauth_client("shopify")
    integration = integration_create(
        customer=acme,
        provider_key="shopify",
        config={"shop": "fake", "base_url": f"{fake_provider.url}/shopify"},
        trusted=True,
    )
    credential_create(
        provider="shopify",
        purpose="api",
        customer=acme,
        fields={"access_token": "expired-x", "refresh_token": "rt-1", "expires_at": _at(hours=1)},
    )
    resolved = credential_resolve(provider="shopify", customer=acme)
    fresh = oauth_token_fresh(
        provider_key="shopify",
        customer=acme,
        resolved=resolved,
        config=integration.config,
        trusted=True,
        force=True,
    )
    assert fresh.version == 2
    [token_call] = fake_provider.journal()
    assert token_call["path"] == TOKEN_PATHS["shopify"]
    assert "client_secret=app-client-secret-7f3a" in token_call["body"]
    # A worker still holding version 1 that meets a 401 takes version 2 under the lock: the
    # spent refresh token is not sent again.
    again = oauth_token_fresh(
        provider_key="shopify",
        customer=acme,
        resolved=resolved,
        config=integration.config,
        trusted=True,
        force=True,
    )
    assert (again.version, again.fields) == (2, fresh.fields)
    assert len(fake_provider.journal()) == 1


@pytest.mark.django_db
def test_oauth_client_is_never_a_customers(acme, api):
    answer = api.post(
        "/api/v1/credentials/",
        {"provider": "miro", "purpose": "oauth_client", "customer": "acme", "fields": CLIENT},
        format="json",
    )
    assert answer.status_code == 400, answer.content
    assert answer["Content-Type"].startswith("application/problem+json")
    assert CLIENT["client_secret"] not in answer.content.decode()
    assert not Credential.objects.filter(purpose="oauth_client").exists()


@pytest.mark.parametrize("provider", ["miro", "shopify"])
def test_the_fake_rotates_refresh_tokens(fake_provider, provider):
    """On the fake provider a refresh token works once, and ``revoked-…`` never."""
    url = fake_provider.url + TOKEN_PATHS[provider]
    form = {"grant_type": "refresh_token", "refresh_token": "rt-once", **CLIENT}
    first = requests.post(url, data=form, timeout=5)
    assert first.status_code == 200
    assert set(first.json()) >= {"access_token", "refresh_token", "expires_in"}
    assert requests.post(url, data=form, timeout=5).json() == {"error": "invalid_grant"}
    revoked = {**form, "refresh_token": "revoked-1"}
    assert requests.post(url, data=revoked, timeout=5).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_refresh_exactly_once(acme, miro_at, oauth_client, fake_provider):
    """Several threads, each with its own database connection (as worker processes have), find
    the same token due at the same moment: one token request, one new version for all."""
    oauth_client()
    credential = miro_at(expires_at=_at(minutes=1))
    resolved = credential_resolve(provider="miro", customer=acme)
    config = {"base_url": f"{fake_provider.url}/miro"}
    barrier = threading.Barrier(5)
    versions, errors = [], []

    def refresh():
        try:
            barrier.wait()
            fresh = oauth_token_fresh(
                provider_key="miro", customer=acme, resolved=resolved, config=config, trusted=True
            )
            versions.append((fresh.version, fresh.fields["access_token"]))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake_provider.journal(TOKEN_PATHS["miro"])) == 1
    assert len(set(versions)) == 1 and versions[0][0] == 2
    assert CredentialVersion.objects.filter(credential=credential).count() == 2


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_worker_processes_refresh_exactly_once(
    acme, miro_at, oauth_client, fake_provider, tmp_path
):
    """Separate OS processes on the suite's database (SQLite file or PostgreSQL), each holding
    the same due token, ask for a fresh one at the same moment: the credential's lock, shared
    through the database, lets one token request out, and every process uses its answer."""
    workers = 4
    oauth_client()
    credential = miro_at(expires_at=_at(minutes=1))
    # The token endpoint answers slowly, so the others come while the first holds the lock.
    fake_provider.fault(path_prefix=TOKEN_PATHS["miro"], latency_ms=400)
    stack = ProcessStack.on_test_database(tmp_path)
    go = tmp_path / "go"
    try:
        for n in range(workers):
            ready = tmp_path / f"ready-{n}"
            code = (
                "from tests.integrations.oauth_refresh_worker import refresh_on_signal; "
                f"refresh_on_signal(customer='acme', base_url={fake_provider.url + '/miro'!r}, "
                f"ready={str(ready)!r}, go={str(go)!r})"
            )
            stack.start(f"refresh-{n}", [sys.executable, "manage.py", "shell", "-c", code])
        ready_count = lambda: len(list(tmp_path.glob("ready-*")))  # noqa: E731
        stack.wait_for(lambda: ready_count() == workers, what="workers ready", timeout=120)
        assert fake_provider.journal() == []
        go.touch()
        for process, _ in stack.processes.values():
            process.wait(timeout=60)
    finally:
        stack.stop()
    results = []
    for name in stack.processes:
        lines = stack.output(name).splitlines()
        found = [json.loads(x[len(RESULT_PREFIX) :]) for x in lines if x.startswith(RESULT_PREFIX)]
        assert len(found) == 1, stack.logs()
        results.append(found[0])
    assert len(fake_provider.journal(TOKEN_PATHS["miro"])) == 1
    current = credential_resolve(provider="miro", customer=acme)
    digest = hashlib.sha256(current.fields["access_token"].encode()).hexdigest()
    assert current.version == 2
    assert results == [{"held": 1, "version": 2, "access_token_sha256": digest}] * workers
    assert CredentialVersion.objects.filter(credential=credential).count() == 2


@pytest.mark.django_db
def test_tokens_and_client_secret_appear_nowhere(
    acme, miro_at, oauth_client, fake_provider, api, caplog
):
    client_secret, refresh_token = _canary(), _canary()
    oauth_client(fields={"client_id": "app", "client_secret": client_secret})
    miro_at(access="expired-seed", refresh=refresh_token, expires_at=_at(hours=1))
    caplog.set_level(logging.DEBUG)
    delivery = _move(acme)
    assert delivery.status == Delivery.Status.SUCCEEDED, delivery.last_error
    fresh = credential_resolve(provider="miro", customer=acme).fields
    places = [("logs", caplog.text.encode())]
    delivery = Delivery.objects.get(pk=delivery.pk)
    places.append(("delivery", json.dumps([delivery.result, delivery.last_error]).encode()))
    for attempt in DeliveryAttempt.objects.filter(delivery=delivery):
        for model_field in DeliveryAttempt._meta.concrete_fields:
            value = getattr(attempt, model_field.attname)
            places.append((model_field.name, json.dumps(value, default=str).encode()))
    places.append(("API delivery", api.get(f"/api/v1/deliveries/{delivery.pk}/").content))
    for credential in Credential.objects.all():
        answer = api.get(f"/api/v1/credentials/{credential.pk}/")
        places.append((f"API credential {credential.pk}", answer.content))
    for secret in (client_secret, refresh_token, fresh["access_token"], fresh["refresh_token"]):
        assert _leaks(secret, places) == []


@pytest.mark.django_db
def test_the_connection_check_refreshes_a_due_token(acme, miro_at, oauth_client, fake_provider):
    oauth_client()
    miro_at(expires_at=_at(minutes=-1))
    integration = Integration.objects.get(customer=acme, provider_key="miro")
    integration.config["board_id"] = MOVE["board_id"]
    outcome = integration_check(integration=integration)
    assert outcome.ok, outcome.error
    assert [method for method, _ in _calls(fake_provider)] == ["POST", "GET"]


@pytest.mark.django_db
def test_the_connection_check_reports_a_grant_to_reauthorise(acme, miro_at, oauth_client):
    oauth_client()
    miro_at(refresh="revoked-1", expires_at=_at(minutes=-1))
    integration = Integration.objects.get(customer=acme, provider_key="miro")
    outcome = integration_check(integration=integration)
    assert (outcome.outcome, outcome.error_class) == ("auth_failed", "oauth_invalid_grant")
    assert "re-authorise" in outcome.error
