"""Issue 17: bad input at the API's edge is a clear 4xx problem naming the field, never a 500, on
SQLite and on PostgreSQL (where a NUL or an out-of-range integer reaches the database as an
error instead of an empty result)."""

import io

import pytest
from django.urls import Resolver404, resolve
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.api.pagination import CursorPagination, PageNumberPagination
from config.api.parsers import MAX_JSON_DEPTH, StrictJSONParser
from credentials.models import Credential
from credentials.services import MAX_GRACE_SECONDS, credential_create
from customers.models import Customer, Region
from integrations.models import Delivery, Integration
from tests.api_routes import api_routes
from webhooks.models import Subscription

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
LARGEST_ID = 2**63 - 1
# Path values that are not ids: none may reach a view as one, or a query.
NOT_IDS = [
    "abc",
    "1e30",
    str(2**70),
    "null,null",
    str(LARGEST_ID + 1),
    "9" * 20,
    "-1",
    "%00",  # a NUL
    "\u0663",  # ARABIC-INDIC DIGIT THREE: a digit to str.isdigit() and int()
    str(LARGEST_ID),  # an id, of nothing
]
DETAIL_ROUTES = [route for route in api_routes() if route.params]
TRELLO_FIELDS = {"api_key": "a" * 32, "token": "b" * 64}


def _errors_at(body: dict, dotted: str):
    """The error messages at ``a.b.c`` of a problem's ``errors``."""
    node = body["errors"]
    for part in dotted.split("."):
        node = node[part]
    return node


def _assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    if code:
        assert body["type"].endswith(f"/{code}"), body
    return body


# --- path ids -----------------------------------------------------------------------------


def test_the_walk_finds_the_detail_routes():
    assert {route.template for route in DETAIL_ROUTES} >= {
        "/api/v1/deliveries/{pk}/",
        "/api/v1/deliveries/{pk}/retry/",
        "/api/v1/deliveries/{pk}/cancel/",
        "/api/v1/inbound-events/{pk}/",
        "/api/v1/inbound-events/{pk}/replay/",
        "/api/v1/subscriptions/{pk}/",
        "/api/v1/subscriptions/{pk}/rotate-secret/",
        "/api/v1/credentials/{pk}/rotate/",
        "/api/v1/integrations/{pk}/check/",
        "/api/v1/customers/{slug}/",
    }


@pytest.mark.parametrize("route", DETAIL_ROUTES, ids=[r.template for r in DETAIL_ROUTES])
def test_a_path_value_that_names_nothing_is_a_404_problem(api, acme, route):
    for value in NOT_IDS:
        path = route.template.format(**{name: value for name, _ in route.params})
        for method in route.methods:
            response = getattr(api, method)(path, {}, format="json")
            assert response.status_code == 404, f"{method.upper()} {path}: {response.content}"
            if method != "head":
                assert response["Content-Type"] == PROBLEM, f"{method.upper()} {path}"


def test_an_id_route_resolves_only_ascii_digits_within_64_bits():
    assert resolve(f"/api/v1/deliveries/{LARGEST_ID}/").kwargs == {"pk": LARGEST_ID}
    for value in ("1e30", str(LARGEST_ID + 1), "\u0663", "+1", " 1"):
        with pytest.raises(Resolver404):
            resolve(f"/api/v1/deliveries/{value}/")


# --- the JSON document itself --------------------------------------------------------------


def _parse(text: str):
    return StrictJSONParser().parse(io.BytesIO(text.encode()))


def test_json_may_nest_64_levels_and_no_deeper():
    assert _parse("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    with pytest.raises(ParseError, match="nested deeper than 64"):
        _parse("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 100_000])
def test_deeply_nested_json_is_a_400_parse_error(api, acme, depth):
    body = '{"customer": "acme", "action": "http.request", "input": ' + "[" * depth
    body += "]" * depth + "}"
    response = api.post("/api/v1/deliveries/", body, content_type="application/json")
    problem = _assert_problem(response, 400, "parse-error")
    assert "nested deeper than 64 levels" in problem["detail"]
    assert not Delivery.objects.exists()


@pytest.fixture
def http_integration(acme):
    Integration.objects.create(
        customer=acme, provider_key="http", config={"base_url": "https://hooks.example.com"}
    )


NUL = "\u0000"
NUL_BODIES = [
    (
        "/api/v1/deliveries/",
        {"customer": "acme", "action": "http.request", "input": {"body": {"note": f"a{NUL}b"}}},
        "input.body.note",
    ),
    (
        "/api/v1/actions/validate/",
        {"customer": "acme", "action": "http.request", "input": {"body": [1, {"x": NUL}]}},
        "input.body.1.x",
    ),
    (
        "/api/v1/integrations/",
        {"customer": "acme", "provider": "trello", "config": {"stages": {f"to{NUL}do": "1"}}},
        "config.stages.to\\u0000do",
    ),
    ("/api/v1/customers/", {"slug": "initech", "name": f"Ini{NUL}tech", "region": "eu"}, "name"),
    ("/api/v1/dead-letters/retry/", {"filter": {"action": NUL}}, "filter.action"),
    (
        "/api/v1/subscriptions/",
        {"customer": "acme", "url": f"https://example.com/{NUL}", "event_types": ["*"]},
        "url",
    ),
]


@pytest.mark.parametrize(("path", "body", "field"), NUL_BODIES, ids=[b[2] for b in NUL_BODIES])
def test_a_nul_anywhere_in_a_json_body_is_a_400_naming_the_field(
    api, acme, http_integration, path, body, field
):
    response = api.post(path, body, format="json")
    problem = _assert_problem(response, 400, "validation-error")
    assert _errors_at(problem, field)
    assert not Delivery.objects.exists()
    assert not Subscription.objects.exists()
    assert Customer.objects.count() == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/?region=%00",
        "/api/v1/integrations/?customer=a%00b",
        "/api/v1/deliveries/?provider=%00",
        "/api/v1/credentials/?anything=%00",
    ],
)
def test_a_nul_in_the_query_string_is_a_400_naming_the_parameter(api, acme, path):
    name = path.split("?")[1].split("=")[0]
    problem = _assert_problem(api.get(path), 400, "validation-error")
    assert list(problem["errors"]) == [name]


@pytest.mark.parametrize(
    ("header", "value"),
    [("Idempotency-Key", f"order{NUL}7"), ("Authorization", f"Bearer sy_ab{NUL}cd_secret")],
)
def test_a_nul_in_a_header_is_a_400_naming_the_header(anonymous_api, api_key, acme, header, value):
    body = {"customer": "acme", "action": "trello.move_card", "input": {}}
    meta = {
        "HTTP_AUTHORIZATION": f"Bearer {api_key[1]}",
        f"HTTP_{header.upper().replace('-', '_')}": value,
    }
    response = anonymous_api.post("/api/v1/deliveries/", body, format="json", **meta)
    assert list(_assert_problem(response, 400)["errors"]) == [header]
    assert not Delivery.objects.exists()


def test_a_nul_in_an_admin_query_is_refused_too(admin_client):
    assert admin_client.get("/admin/customers/customer/?q=%00").status_code == 400


# --- bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ids", [[1e30], [LARGEST_ID + 1], [2**70], [0], ["1e30"]])
def test_bulk_retry_ids_must_be_64_bit_ids(api, ids):
    response = api.post("/api/v1/dead-letters/retry/", {"ids": ids}, format="json")
    assert _errors_at(_assert_problem(response, 400), "ids")


def test_bulk_retry_takes_the_largest_id(api):
    response = api.post("/api/v1/dead-letters/retry/", {"ids": [LARGEST_ID]}, format="json")
    assert (response.status_code, response.json()) == (202, {"retried": 0})


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"retry": {"base_seconds": 3601}}, "config.retry.base_seconds"),
        ({"retry": {"cap_seconds": 3601}}, "config.retry.cap_seconds"),
        ({"retry": {"cap_seconds": 1e300}}, "config.retry.cap_seconds"),
        ({"retry": {"max_attempts": 51}}, "config.retry.max_attempts"),
        ({"retry": {"base_seconds": "nan"}}, "config.retry.base_seconds"),
        ({"rate_limited_delay_seconds": 86400}, "config.rate_limited_delay_seconds"),
        ({"rate_limit": {"rate": 10**7, "per_seconds": 1}}, "config.rate_limit.rate"),
        ({"rate_limit": {"rate": 1, "per_seconds": 86401}}, "config.rate_limit.per_seconds"),
        ({"rate_limit": {"rate": 10**30, "per_seconds": 1}}, "config.rate_limit.rate"),
    ],
)
def test_integration_config_out_of_bounds_is_a_400_naming_the_setting(api, acme, config, field):
    body = {"customer": "acme", "provider": "trello", "config": config}
    response = api.post("/api/v1/integrations/", body, format="json")
    assert _errors_at(_assert_problem(response, 400, "validation-error"), field)
    assert not Integration.objects.exists()


def test_integration_config_at_its_bounds_is_accepted(api, acme):
    config = {
        "retry": {"base_seconds": 3600, "cap_seconds": 3600, "max_attempts": 50},
        "rate_limited_delay_seconds": 3600,
        "rate_limit": {"rate": 1_000_000, "per_seconds": 86400},
    }
    body = {"customer": "acme", "provider": "trello", "config": config}
    response = api.post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["config"]["retry"]["max_attempts"] == 50


@pytest.fixture
def trello_api_credential(acme):
    return credential_create(provider="trello", purpose="api", customer=acme, fields=TRELLO_FIELDS)


@pytest.mark.parametrize("grace", [MAX_GRACE_SECONDS + 1, 10**30, -1])
def test_a_credential_grace_beyond_30_days_is_a_400(api, trello_api_credential, grace):
    body = {"fields": {"api_key": "c" * 32, "token": "d" * 64}, "grace_seconds": grace}
    response = api.post(f"/api/v1/credentials/{trello_api_credential.pk}/rotate/", body, "json")
    assert _errors_at(_assert_problem(response, 400, "validation-error"), "grace_seconds")
    assert Credential.objects.get().versions.count() == 1


def test_a_credential_grace_of_30_days_is_accepted(api, trello_api_credential):
    body = {"fields": {"api_key": "c" * 32, "token": "d" * 64}, "grace_seconds": MAX_GRACE_SECONDS}
    response = api.post(f"/api/v1/credentials/{trello_api_credential.pk}/rotate/", body, "json")
    assert response.status_code == 200, response.content
    assert response.json()["current_version"] == 2


def test_a_subscription_grace_beyond_7_days_stays_a_400(api, acme):
    created = api.post(
        "/api/v1/subscriptions/",
        {"customer": "acme", "url": "https://hooks.example.com/in", "event_types": ["*"]},
        format="json",
    ).json()
    response = api.post(
        f"/api/v1/subscriptions/{created['id']}/rotate-secret/",
        {"grace_seconds": 7 * 24 * 3600 + 1},
        format="json",
    )
    assert _errors_at(_assert_problem(response, 400), "grace_seconds")


@pytest.mark.parametrize("pagination", [PageNumberPagination, CursorPagination])
@pytest.mark.parametrize(
    ("asked", "given"), [("10", 10), (str(10**30), 500), ("1e30", 50), ("-5", 50), ("abc", 50)]
)
def test_page_sizes_are_bounded(pagination, asked, given):
    request = Request(APIRequestFactory().get("/", {"page_size": asked}))
    assert pagination().get_page_size(request) == given


@pytest.mark.parametrize("page_size", [str(10**30), "-1", "abc", "%00"])
def test_a_list_answers_any_page_size(api, page_size):
    Region.objects.create(code="eu", name="EU")
    response = api.get(f"/api/v1/regions/?page_size={page_size}")
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert [r["code"] for r in response.json()["results"]] == ["eu"]
