import io

import pytest

from customers.models import Customer
from customers.services import api_key_create

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def test_lists_customers_with_pagination(api, acme, globex):
    response = api.get("/api/v1/customers/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [c["slug"] for c in body["results"]] == ["acme", "globex"]
    assert body["results"][0] == {
        "slug": "acme",
        "name": "Acme GmbH",
        "region": "eu",
        "tier": "premium",
        "active": True,
        "created_at": body["results"][0]["created_at"],
        "updated_at": body["results"][0]["updated_at"],
    }


def test_filters_customers(api, acme, globex):
    assert [c["slug"] for c in api.get("/api/v1/customers/?region=us").json()["results"]] == [
        "globex"
    ]
    assert [c["slug"] for c in api.get("/api/v1/customers/?tier=premium").json()["results"]] == [
        "acme"
    ]


def test_creates_customer(api, region_eu):
    response = api.post(
        "/api/v1/customers/", {"slug": "initech", "name": "Initech", "region": "eu"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["tier"] == "standard"
    assert Customer.objects.get(slug="initech").region.code == "eu"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"slug": "x", "name": "X", "region": "mars"}, "region"),
        ({"slug": "x", "name": "X", "region": "eu", "tier": "gold"}, "tier"),
        ({"slug": "Not A Slug", "name": "X", "region": "eu"}, "slug"),
        ({"name": "X", "region": "eu"}, "slug"),
    ],
)
def test_bad_customer_input_is_a_problem_naming_the_field(api, region_eu, payload, field):
    response = api.post("/api/v1/customers/", payload, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 400
    assert body["title"] == "Bad Request"
    assert field in body["errors"]
    assert field in body["detail"]
    assert not Customer.objects.filter(name="X").exists()


def test_duplicate_slug_is_400(api, acme):
    response = api.post(
        "/api/v1/customers/", {"slug": "acme", "name": "Again", "region": "eu"}, format="json"
    )
    assert response.status_code == 400
    assert "slug" in response.json()["errors"]


def test_malformed_json_is_400_not_500(api, region_eu):
    response = api.post("/api/v1/customers/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert "JSON parse error" in response.json()["detail"]


def test_patch_customer(api, acme):
    response = api.patch(
        "/api/v1/customers/acme/", {"active": False, "tier": "enterprise"}, format="json"
    )
    assert response.status_code == 200
    acme.refresh_from_db()
    assert (acme.active, acme.tier) == (False, "enterprise")


def test_patch_cannot_rename_slug(api, acme):
    api.patch("/api/v1/customers/acme/", {"slug": "other"}, format="json")
    assert Customer.objects.filter(slug="acme").exists()


def test_unknown_customer_is_problem_404(api):
    response = api.get("/api/v1/customers/nobody/")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


def test_restricted_key_sees_only_its_customers(acme, globex):
    from rest_framework.test import APIClient

    _, raw = api_key_create(name="acme-only", customers=[acme])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [c["slug"] for c in client.get("/api/v1/customers/").json()["results"]] == ["acme"]
    assert client.get("/api/v1/customers/acme/").status_code == 200
    assert client.get("/api/v1/customers/globex/").status_code == 404
    # Changing a customer (its region, tier or active flag) is admin work, its own included.
    for slug in ("globex", "acme"):
        patched = client.patch(f"/api/v1/customers/{slug}/", {"active": False}, format="json")
        assert patched.status_code == 403
        assert "'admin' scope" in patched.json()["detail"]
    denied = client.post(
        "/api/v1/customers/", {"slug": "n", "name": "N", "region": "eu"}, format="json"
    )
    assert denied.status_code == 403
    assert denied["Content-Type"] == PROBLEM


def test_regions_list_and_create(api, region_eu):
    assert api.get("/api/v1/regions/").json()["results"][0]["code"] == "eu"
    created = api.post("/api/v1/regions/", {"code": "apac", "name": "Asia Pacific"}, format="json")
    assert created.status_code == 201
    duplicate = api.post("/api/v1/regions/", {"code": "apac", "name": "Again"}, format="json")
    assert duplicate.status_code == 400
    assert "code" in duplicate.json()["errors"]


def test_unknown_api_path_is_problem_404(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


def test_oversized_body_is_413(api, region_eu, settings):
    settings.SWITCHYARD_MAX_BODY_BYTES = 1000
    body = '{"slug": "big", "name": "' + "x" * 2000 + '", "region": "eu"}'
    response = api.post("/api/v1/customers/", body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == PROBLEM
    assert not Customer.objects.filter(slug="big").exists()


def test_chunked_body_outside_the_webhook_receiver_is_411(api, region_eu):
    """Django reads nothing of a body without Content-Length: without this the API would
    answer as if every field were missing."""
    body = b'{"slug": "chunky", "name": "Chunky", "region": "eu"}'
    response = api.post(
        "/api/v1/customers/",
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )
    assert response.status_code == 411
    assert response["Content-Type"] == PROBLEM
    assert "Content-Length" in response.json()["detail"]
    assert not Customer.objects.filter(slug="chunky").exists()
