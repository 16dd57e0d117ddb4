import hashlib

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from customers.models import ApiKey
from customers.services import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def _client(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def test_key_is_stored_only_as_a_hash():
    api_key, raw = api_key_create(name="billing")
    assert raw.startswith(f"sy_{api_key.prefix}_")
    assert api_key.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert raw not in str(stored)


def test_authenticate_accepts_the_key_and_records_use():
    api_key, raw = api_key_create(name="billing")
    assert api_key_authenticate(raw_key=raw) == api_key
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),
        lambda raw: raw.replace("sy_", "xx_", 1),
        lambda raw: "sy_00000000_" + raw.split("_", 2)[2],
        lambda raw: "garbage",
        lambda raw: "",
    ],
)
def test_authenticate_rejects_wrong_keys(mangle):
    _, raw = api_key_create(name="billing")
    assert api_key_authenticate(raw_key=mangle(raw)) is None


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Token abc", "Basic dXNlcjpwYXNz", "Bearer sy_nope_nope"],
)
def test_missing_or_malformed_key_is_401_problem(header, acme):
    response = _client(header).get("/api/v1/customers/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"] == "Bearer"


def test_revoked_key_is_401(acme):
    api_key, raw = api_key_create(name="billing")
    assert _client(f"Bearer {raw}").get("/api/v1/customers/").status_code == 200
    api_key_revoke(api_key=api_key)
    response = _client(f"Bearer {raw}").get("/api/v1/customers/")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_create_api_key_command_prints_a_working_restricted_key(acme, globex, capsys):
    call_command("create_api_key", "--name", "crm", "--customer", "acme")
    raw = capsys.readouterr().out.strip()
    client = _client(f"Bearer {raw}")
    assert [c["slug"] for c in client.get("/api/v1/customers/").json()["results"]] == ["acme"]


def test_create_api_key_command_rejects_unknown_customer():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nobody"):
        call_command("create_api_key", "--name", "crm", "--customer", "nobody")
