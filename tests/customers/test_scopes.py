"""Key scopes (DESIGN §10): app keys act for their customers, admin keys also configure what
customers share; expiry, audit, the command and the migration of existing keys."""

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import RequestFactory, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from customers.authentication import FailedAuthenticationThrottle, UnblockedAddresses
from customers.models import ApiKey, Customer
from customers.services import (
    ApiKeyScopeInvalid,
    api_key_authenticate,
    api_key_create,
    api_key_update,
)

PROBLEM = "application/problem+json"


def _client(raw: str, address: str = "127.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def app_acme(acme):
    _, raw = api_key_create(name="acme-app", customers=[acme])
    return _client(raw)


def test_app_is_the_default_scope_and_admin_refuses_a_customer_limit(acme):
    key, _ = api_key_create(name="crm")
    assert key.scope == ApiKey.Scope.APP
    with pytest.raises(ApiKeyScopeInvalid):
        api_key_create(name="ops", customers=[acme], scope=ApiKey.Scope.ADMIN)
    with pytest.raises(ApiKeyScopeInvalid):
        api_key_update(api_key=key, customers=[acme], scope=ApiKey.Scope.ADMIN)
    assert not ApiKey.objects.filter(name="ops").exists()


def test_create_api_key_command_scopes_expiry_and_audit(acme):
    out = StringIO()
    call_command("create_api_key", "--name", "ops", "--scope", "admin", stdout=out)
    key = api_key_authenticate(raw_key=out.getvalue().strip())
    assert key.scope == "admin" and key.expires_at is None
    entry = key.audit_entries.get()
    assert (entry.action, entry.actor) == ("create", "command:create_api_key")
    assert entry.changes["scope"] == [None, "admin"]

    with pytest.raises(CommandError, match="cannot be limited to customers"):
        call_command("create_api_key", "--name", "x", "--scope", "admin", "--customer", "acme")
    with pytest.raises(CommandError, match="Unknown customer"):
        call_command("create_api_key", "--name", "x", "--customer", "nope")
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("create_api_key", "--name", "x", "--expires", "tomorrow")

    out = StringIO()
    call_command(
        "create_api_key", "--name", "crm", "--customer", "acme",
        "--expires", "2099-01-01T00:00:00Z", stdout=out,
    )  # fmt: skip
    key = api_key_authenticate(raw_key=out.getvalue().strip())
    assert key.scope == "app" and key.expires_at.year == 2099
    assert [c.slug for c in key.customers.all()] == ["acme"]


def test_an_expired_key_is_refused(acme):
    key, raw = api_key_create(name="temp", expires_at=timezone.now() + timedelta(hours=1))
    assert _client(raw).get("/api/v1/customers/").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = _client(raw).get("/api/v1/customers/")
    assert refused.status_code == 401
    assert refused["Content-Type"] == PROBLEM
    assert "expired" in refused.json()["detail"]


def test_scope_changes_and_revocation_are_audited(acme, globex):
    key, _ = api_key_create(name="crm", customers=[acme], actor="command")
    api_key_update(api_key=key, customers=[], scope=ApiKey.Scope.ADMIN, actor="command")
    change = key.audit_entries.get(action="change")
    assert change.changes == {"scope": ["app", "admin"], "customers": [["acme"], []]}
    api_key_update(api_key=key, name="crm")  # nothing changed: nothing audited
    assert key.audit_entries.filter(action="change").count() == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/regions/", {"code": "ap", "name": "Asia Pacific"}),
        ("post", "/api/v1/customers/", {"slug": "n", "name": "N", "region": "eu"}),
        ("patch", "/api/v1/customers/acme/", {"region": "us"}),
        ("patch", "/api/v1/customers/acme/", {"tier": "enterprise"}),
        ("patch", "/api/v1/customers/acme/", {"active": False}),
        (
            "post",
            "/api/v1/credentials/",
            {"provider": "ga4", "fields": {"measurement_id": "G-1", "api_secret": "s"}},
        ),
        (
            "post",
            "/api/v1/credentials/",
            {"provider": "ga4", "region": "eu", "fields": {"api_secret": "s"}},
        ),
        (
            "post",
            "/api/v1/integrations/",
            {"customer": "acme", "provider": "trello", "trusted": True},
        ),
        (
            "post",
            "/api/v1/subscriptions/",
            {
                "customer": "acme",
                "url": "http://127.0.0.1:9/hook",
                "event_types": ["*"],
                "allow_private": True,
            },
        ),
    ],
)
def test_app_keys_get_403_naming_the_admin_scope(app_acme, region_us, method, path, body):
    response = getattr(app_acme, method)(path, body, format="json")
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/scope-required")
    assert "'admin' scope" in problem["detail"]


def test_admin_keys_do_the_admin_work(api, acme, region_us):
    assert (
        api.post("/api/v1/regions/", {"code": "ap", "name": "AP"}, format="json").status_code == 201
    )
    moved = api.patch("/api/v1/customers/acme/", {"region": "us"}, format="json")
    assert moved.status_code == 200 and moved.json()["region"] == "us"
    trusted = api.post(
        "/api/v1/integrations/",
        {"customer": "acme", "provider": "trello", "trusted": True},
        format="json",
    )
    assert trusted.status_code == 201 and trusted.json()["trusted"] is True


def test_app_keys_see_only_their_customers_own_credentials(api, app_acme, acme):
    for body in (
        {"provider": "trello", "customer": "acme", "fields": {"api_key": "k", "token": "t"}},
        {"provider": "trello", "fields": {"api_key": "k", "token": "t"}},
    ):
        assert api.post("/api/v1/credentials/", body, format="json").status_code == 201
    seen = app_acme.get("/api/v1/credentials/").json()["results"]
    assert [c["customer"] for c in seen] == ["acme"]
    shared = api.get("/api/v1/credentials/").json()["results"][1]
    assert shared["customer"] is None
    for action in ("", "rotate/", "revoke/"):
        method = app_acme.get if not action else app_acme.post
        assert (
            method(f"/api/v1/credentials/{shared['id']}/{action}", {}, format="json").status_code
            == 404
        )


def test_breakers_show_errors_to_admin_keys_only(api, app_acme):
    from integrations.models import CircuitBreaker

    CircuitBreaker.objects.create(
        provider_key="trello", region="us", state="open", last_error="HTTP 500 for globex card"
    )
    admin_row = api.get("/api/v1/breakers/").json()["results"][0]
    assert admin_row["last_error"] == "HTTP 500 for globex card"
    app_row = app_acme.get("/api/v1/breakers/").json()["results"][0]
    assert set(app_row) == {"provider", "region", "state", "probe_due", "opened_at", "open_until"}
    assert "globex" not in str(app_row)


@override_settings(SWITCHYARD_AUTH_FAILURES_PER_MINUTE=3)
def test_failed_authentications_are_throttled_per_address(api_key):
    _, raw = api_key
    guesser = _client("sy_deadbeef_guess", address="203.0.113.7")
    assert [guesser.get("/api/v1/customers/").status_code for _ in range(3)] == [401] * 3
    blocked = guesser.get("/api/v1/customers/")
    assert blocked.status_code == 429
    assert blocked["Content-Type"] == PROBLEM
    assert int(blocked["Retry-After"]) > 0
    # Every request from that address waits, a valid key too; other addresses are unaffected.
    assert _client(raw, address="203.0.113.7").get("/api/v1/customers/").status_code == 429
    assert _client(raw, address="203.0.113.8").get("/api/v1/customers/").status_code == 200


@override_settings(SWITCHYARD_AUTH_FAILURES_PER_MINUTE=3)
def test_an_address_blocked_by_another_process_gets_one_unchecked_guess_here(api_key):
    """A client that has not failed here is not looked up in the shared cache for a second; its
    first failure here makes every later request from its address checked again."""
    _, raw = api_key
    address = "203.0.113.20"
    assert _client(raw, address=address).get("/api/v1/customers/").status_code == 200
    elsewhere = RequestFactory().get("/api/v1/customers/", REMOTE_ADDR=address)
    for _ in range(3):  # another process's failures, in the shared cache
        FailedAuthenticationThrottle().record_failure(elsewhere)
    guesser = _client("sy_deadbeef_guess", address=address)
    assert [guesser.get("/api/v1/customers/").status_code for _ in range(2)] == [401, 429]
    assert _client(raw, address=address).get("/api/v1/customers/").status_code == 429


def test_unblocked_addresses_are_remembered_for_a_while_and_forgotten_on_failure(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    unblocked = UnblockedAddresses(seconds=1.0, size=2)
    unblocked.add("a")
    assert "a" in unblocked and "b" not in unblocked
    clock[0] += 1.5
    assert "a" not in unblocked
    unblocked.add("a")
    unblocked.discard("a")
    assert "a" not in unblocked
    unblocked.add("b"), unblocked.add("c"), unblocked.add("d")  # bounded: full, it starts over
    assert "d" in unblocked and "b" not in unblocked


@pytest.mark.django_db(transaction=True)
def test_migration_makes_unrestricted_keys_admin_and_limited_keys_app():
    executor = MigrationExecutor(connection)
    executor.migrate([("customers", "0001_initial")])
    old = executor.loader.project_state([("customers", "0001_initial")]).apps
    region = old.get_model("customers", "Region").objects.create(code="eu", name="EU")
    customer = old.get_model("customers", "Customer").objects.create(
        slug="acme", name="Acme", region=region
    )
    old_key = old.get_model("customers", "ApiKey")
    old_key.objects.create(name="everything", prefix="aaaa0001", secret_hash="0" * 64)
    old_key.objects.create(name="acme-only", prefix="aaaa0002", secret_hash="0" * 64)
    old_key.objects.get(name="acme-only").customers.add(customer)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    scopes = {k.name: (k.scope, k.customer_limited) for k in ApiKey.objects.all()}
    assert scopes == {"everything": ("admin", False), "acme-only": ("app", True)}


def test_an_unreachable_cache_throttles_nothing_and_fails_nothing(api_key, monkeypatch):
    """Redis down must not take the API down with it (deliveries are accepted while the broker
    and the shared cache are away)."""
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    for method in ("get", "set", "add", "delete"):
        monkeypatch.setattr(cache, method, down)
    _, raw = api_key
    assert _client(raw).get("/api/v1/customers/").status_code == 200
    assert _client("sy_deadbeef_guess").get("/api/v1/customers/").status_code == 401


@override_settings(SWITCHYARD_AUTH_FAILURES_PER_MINUTE=3)
def test_x_forwarded_for_does_not_reset_the_throttle(db):
    """Without trusted proxies the throttle counts REMOTE_ADDR, whatever the client writes."""
    statuses = [
        _client("sy_deadbeef_guess", address="203.0.113.9")
        .get("/api/v1/customers/", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
        .status_code
        for i in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


def test_a_limited_key_whose_customers_are_deleted_sees_none(region_eu, acme):
    lone = Customer.objects.create(slug="lone", name="Lone", region=region_eu)
    _, raw = api_key_create(name="lone-app", customers=[lone])
    client = _client(raw)
    assert [c["slug"] for c in client.get("/api/v1/customers/").json()["results"]] == ["lone"]
    lone.delete()
    assert client.get("/api/v1/customers/").json()["results"] == []
    assert client.get("/api/v1/customers/acme/").status_code == 404


def test_customers_added_any_way_limit_the_key(acme, globex):
    key, raw = api_key_create(name="crm")
    acme.api_keys.add(key)  # the reverse side, as a shell session might
    key.refresh_from_db()
    assert key.customer_limited
    assert [c["slug"] for c in _client(raw).get("/api/v1/customers/").json()["results"]] == ["acme"]


def test_an_idempotent_replay_stays_within_the_keys_customers(acme, globex):
    key, raw = api_key_create(name="crm")
    client = _client(raw)
    body = {
        "customer": "globex",
        "action": "trello.move_card",
        "input": {"card_id": "5abbe4b7ddc1b351ef961414", "list_id": "5abbe4b7ddc1b351ef961415"},
    }
    from integrations.services import integration_create

    integration_create(customer=globex, provider_key="trello")
    first = client.post("/api/v1/deliveries/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 202, first.content
    api_key_update(api_key=key, customers=[acme])
    replay = client.post("/api/v1/deliveries/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert replay.status_code == 400
    assert "customer" in replay.json()["errors"]
    assert "globex" not in replay.content.decode()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/deliveries/abc/"),
        ("post", "/api/v1/deliveries/abc/retry/"),
        ("get", "/api/v1/inbound-events/abc/"),
        ("get", "/api/v1/subscriptions/abc/"),
        ("get", "/api/v1/credentials/abc/"),
        ("post", "/api/v1/integrations/abc/check/"),
    ],
)
def test_a_non_numeric_id_is_a_404_problem(api, method, path):
    response = getattr(api, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
