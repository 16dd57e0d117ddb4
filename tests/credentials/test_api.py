import pytest
from rest_framework.test import APIClient

from credentials.services import credential_create, credential_resolve
from customers.services import api_key_create
from tests.credentials.conftest import TRELLO_FIELDS

URL = "/api/v1/credentials/"
VERSION_KEYS = {"version", "state", "hint", "created_at", "grace_until", "last_used_at"}


def _problem(response, status, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    if field:
        assert field in body["errors"], body
    return body


def test_create_returns_metadata_versions_and_hints_only(api, acme):
    response = api.post(
        URL,
        {
            "provider": "trello",
            "purpose": "api",
            "customer": "acme",
            "region": None,
            "tier": None,
            "label": "acme board",
            "fields": TRELLO_FIELDS,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("provider", "purpose", "customer", "region", "tier", "label")} == {
        "provider": "trello",
        "purpose": "api",
        "customer": "acme",
        "region": None,
        "tier": None,
        "label": "acme board",
    }
    assert body["current_version"] == 1
    [version] = body["versions"]
    assert set(version) == VERSION_KEYS
    assert version["state"] == "current"
    assert version["hint"].startswith("…") and len(version["hint"]) == 5
    assert (version["grace_until"], version["last_used_at"]) == (None, None)
    assert "fields" not in body
    assert TRELLO_FIELDS["token"] not in response.content.decode()
    assert credential_resolve(provider="trello", customer=acme).fields == TRELLO_FIELDS
    assert api.get(f"{URL}{body['id']}/").json() == body
    listing = api.get(URL).json()
    assert listing["count"] == 1 and listing["results"] == [body]


def test_region_and_tier_scope(api, region_eu):
    response = api.post(
        URL,
        {"provider": "miro", "region": "eu", "tier": "premium", "fields": {"access_token": "x"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["region"], response.json()["tier"]) == ("eu", "premium")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "nope", "fields": {}}, "provider"),
        ({"provider": "trello", "fields": {"api_key": "k"}}, "fields.token"),
        ({"provider": "trello", "fields": {**TRELLO_FIELDS, "extra": "x"}}, "fields.extra"),
        ({"provider": "trello", "purpose": "billing", "fields": TRELLO_FIELDS}, "purpose"),
        ({"provider": "trello"}, "fields"),
        ({"provider": "trello", "customer": "nobody", "fields": TRELLO_FIELDS}, "customer"),
        ({"provider": "trello", "tier": "gold", "fields": TRELLO_FIELDS}, "tier"),
        (
            {"provider": "trello", "customer": "acme", "region": "eu", "fields": TRELLO_FIELDS},
            "customer",
        ),
    ],
)
def test_create_bad_input_is_a_400_naming_the_field(api, acme, body, field):
    body = _problem(api.post(URL, {"customer": "acme", **body}, format="json"), 400, field)
    assert TRELLO_FIELDS["token"] not in str(body)


def test_duplicate_scope_is_a_409(api, trello_acme):
    body = {"provider": "trello", "customer": "acme", "fields": TRELLO_FIELDS}
    _problem(api.post(URL, body, format="json"), 409)


def test_rotate_and_revoke(api, trello_acme, acme):
    rotated = api.post(
        f"{URL}{trello_acme.pk}/rotate/",
        {"fields": {"api_key": "n" * 32, "token": "m" * 64}, "grace_seconds": 60},
        format="json",
    )
    assert rotated.status_code == 200, rotated.content
    body = rotated.json()
    assert body["current_version"] == 2
    assert [(v["version"], v["state"]) for v in body["versions"]] == [
        (2, "current"),
        (1, "previous"),
    ]
    assert body["versions"][1]["grace_until"] is not None
    assert credential_resolve(provider="trello", customer=acme).fields["token"] == "m" * 64
    audit = trello_acme.audit_entries.first()
    assert audit.actor == "api-key:test-app"

    revoked = api.post(f"{URL}{trello_acme.pk}/revoke/", {}, format="json")
    assert revoked.status_code == 200
    assert [v["state"] for v in revoked.json()["versions"]] == ["current", "revoked"]


def test_rotate_bad_input(api, trello_acme):
    rotate = f"{URL}{trello_acme.pk}/rotate/"
    _problem(
        api.post(rotate, {"fields": TRELLO_FIELDS, "grace_seconds": -5}, format="json"),
        400,
        "grace_seconds",
    )
    _problem(api.post(rotate, {"fields": {"api_key": "k"}}, format="json"), 400, "fields.token")
    _problem(api.post(f"{URL}999999/rotate/", {"fields": TRELLO_FIELDS}, format="json"), 404)


def test_rotating_a_revoked_credential_is_a_409(api, trello_acme):
    response = api.post(f"{URL}{trello_acme.pk}/revoke/", {"include_current": True}, format="json")
    assert response.json()["enabled"] is False
    assert response.json()["current_version"] is None
    body = _problem(
        api.post(f"{URL}{trello_acme.pk}/rotate/", {"fields": TRELLO_FIELDS}, format="json"), 409
    )
    assert "revoked" in body["detail"]


def test_restricted_key_sees_only_its_customers(acme, globex, region_eu):
    theirs = credential_create(
        provider="trello", purpose="api", customer=globex, fields=TRELLO_FIELDS
    )
    shared = credential_create(
        provider="trello", purpose="api", region=region_eu, fields=TRELLO_FIELDS
    )
    mine = credential_create(provider="trello", purpose="api", customer=acme, fields=TRELLO_FIELDS)
    row, raw = api_key_create(name="acme-app")
    row.customers.set([acme])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [c["id"] for c in client.get(URL).json()["results"]] == [mine.pk]
    for other in (theirs, shared):
        _problem(client.get(f"{URL}{other.pk}/"), 404)
        _problem(
            client.post(f"{URL}{other.pk}/rotate/", {"fields": TRELLO_FIELDS}, format="json"), 404
        )
        _problem(client.post(f"{URL}{other.pk}/revoke/", {}, format="json"), 404)
    assert client.get(f"{URL}{mine.pk}/").status_code == 200
    _problem(
        client.post(
            URL,
            {"provider": "miro", "customer": "globex", "fields": {"access_token": "x"}},
            format="json",
        ),
        400,
        "customer",
    )
    _problem(
        client.post(URL, {"provider": "miro", "fields": {"access_token": "x"}}, format="json"), 403
    )
    created = client.post(
        URL,
        {"provider": "miro", "customer": "acme", "fields": {"access_token": "x"}},
        format="json",
    )
    assert created.status_code == 201


def test_anonymous_is_refused(anonymous_api):
    assert anonymous_api.get(URL).status_code == 401


def test_openapi_schema_documents_the_endpoints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/credentials/{id}/rotate/" in text
