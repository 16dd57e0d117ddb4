"""Tenant isolation over every route of the REST API (DESIGN §7 and §10, issue 14 "Done when").

How it works:

* ``ROUTES`` is built when the module is collected, by walking
  ``get_resolver().url_patterns`` (tests/api_routes.py): each pattern under ``/api/v1/``
  becomes a path template (``/api/v1/credentials/{pk}/rotate/``) with the methods its view
  answers (a viewset's ``actions``; an APIView's implemented handlers; HEAD wherever GET is).
  A new endpoint is therefore a new set of test cases without editing this file.
* ``world`` holds two customers, A=acme (eu) and B=globex (us), each owning one object of every
  kind the API exposes (two credentials, an integration, a live and a dead delivery, a webhook
  endpoint, an inbound event, a subscription), plus objects shared by several customers: a
  global and a region credential, a subscription to every customer's events and an open
  breaker whose error names globex. For an app key limited to A, the shared objects are as
  foreign as B's, so they are listed among B's objects.
* A path parameter is replaced by an object of the kind named by the literal segment before it
  (``credentials/{pk}`` → a credential): ``KINDS``. A parameter whose kind is not there fails
  the test with a message asking for the mapping, so a new route cannot escape unchecked.
* With an app key limited to A:
  - every method of every route with a parameter answers 403 or 404 on each of B's objects,
    shows none of B's identifiers, and nothing of B's (nor anything shared) changes:
    ``snapshot`` compares the rows before and after. OPTIONS, which describes a route and not
    an object, answers for B's objects exactly as for A's;
  - on the routes without one, GET (also with ``?customer=globex``) answers 200 showing none
    of B's identifiers, and writes naming B (``WRITE_BODIES``, ``{"customer": "globex"}`` by
    default, always also ``{}``) are refused with 400/403/404 and create or change nothing of
    B's. A bulk route (``BULK_TWINS``) may instead answer 2xx if nothing of B's changed and
    the answer equals the one for ids that do not exist (no oracle);
  - the same requests on A's own objects are not refused (GET 200, the rest never 404) and the
    same writes for A succeed, so the test cannot pass by refusing everything or by sending
    bodies that would fail anyway.
* ``ADMIN_ACTIONS``: app keys, limited to A or not limited at all, get a 403 problem of type
  ``…/scope-required`` and change nothing.
* The platform's internal ``standard_webhooks.send`` is refused at the API (400 naming
  ``action``) whoever's subscription and event it names.

Nothing is sent anywhere: every URL in the world points at the discard port of loopback, and
on-commit hooks (the queue) do not run inside the test transaction.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import resolve
from django.utils import timezone
from rest_framework.test import APIClient

from credentials.models import Credential, CredentialAuditEntry, CredentialVersion
from credentials.services import credential_create
from customers.models import Customer, Region
from customers.services import api_key_create
from integrations.models import CircuitBreaker, Delivery, DeliveryAttempt, Integration
from integrations.services import integration_create
from tests.api_routes import Route, api_routes
from webhooks.models import InboundEvent, Subscription, WebhookEndpoint
from webhooks.services import endpoint_create, subscription_create

pytestmark = pytest.mark.django_db

DISCARD = "http://127.0.0.1:9"  # nothing listens on the discard port
REFUSED = {403, 404}
WRITE_REFUSED = {400, 403, 404}
TRELLO_API = {"api_key": "a" * 32, "token": "b" * 64}
MOVE_INPUT = {"card_id": "card1", "list_id": "c" * 24}

# Literal segment before a path parameter → (attribute of Objects, model attribute in the path,
# field naming the object in API bodies).
KINDS = {
    "customers": ("customers", "slug", "slug"),
    "credentials": ("credentials", "pk", "id"),
    "integrations": ("integrations", "pk", "id"),
    "deliveries": ("deliveries", "pk", "id"),
    "dead-letters": ("deliveries", "pk", "id"),
    "webhook-endpoints": ("endpoints", "public_id", "id"),
    "inbound-events": ("events", "pk", "id"),
    "subscriptions": ("subscriptions", "pk", "id"),
}


# --- the routes --------------------------------------------------------------------------

ROUTES = api_routes()
OBJECT_CASES = [(r, m) for r in ROUTES if r.params for m in r.methods]
LIST_CASES = [(r, m) for r in ROUTES if not r.params for m in r.methods]


def _case_ids(cases):
    return [f"{method.upper()} {route.template}" for route, method in cases]


# --- the world ---------------------------------------------------------------------------


@dataclass
class Objects:
    """Objects by kind, each kind a list (a delivery may be live or dead)."""

    customers: list
    credentials: list
    integrations: list
    deliveries: list
    endpoints: list
    events: list
    subscriptions: list

    def of(self, segment: str) -> list[tuple[object, str]]:
        """(object, its value in a path) for the kind named by ``segment``."""
        attribute, key, _ = KINDS[segment]
        return [(obj, str(getattr(obj, key))) for obj in getattr(self, attribute)]

    def api_ids(self, segment: str) -> set[str]:
        return {value for _, value in self.of(segment)}


@dataclass
class World:
    acme: Customer
    a: Objects  # acme's
    b: Objects  # globex's and the shared ones: foreign to a key limited to acme
    markers: tuple[str, ...]  # strings only B's and the shared objects show
    app_a: APIClient  # app key limited to acme
    app_all: APIClient  # app key without a customer limit


def _client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def _delivery(customer, integration, *, dead: bool) -> Delivery:
    now = timezone.now()
    delivery = Delivery.objects.create(
        customer=customer,
        action="trello.move_card",
        provider_key="trello",
        operation="move_card",
        integration=integration,
        input=MOVE_INPUT,
        attempt_limit=5,
        attempts=1 if dead else 0,
        status=Delivery.Status.DEAD if dead else Delivery.Status.PENDING,
        dead_reason=Delivery.DeadReason.NON_RETRYABLE if dead else "",
        last_error=f"HTTP 400 for {customer.slug}" if dead else "",
        next_attempt_at=None if dead else now + timedelta(days=1),
        finished_at=now if dead else None,
    )
    if dead:
        DeliveryAttempt.objects.create(
            delivery=delivery, number=1, started_at=now, outcome="terminal", response_status=400
        )
    return delivery


def _tenant(customer: Customer) -> Objects:
    slug = customer.slug
    api = credential_create(
        provider="trello", purpose="api", customer=customer, label=f"{slug} api", fields=TRELLO_API
    )
    signing = credential_create(
        provider="trello",
        purpose="webhook_signing",
        customer=customer,
        label=f"{slug} signing",
        fields={"secret": f"{slug}-signing-secret"},
    )
    integration = integration_create(
        customer=customer, provider_key="trello", config={"base_url": f"{DISCARD}/{slug}"}
    )
    endpoint = endpoint_create(customer=customer, provider="trello", credential=signing)
    event = InboundEvent.objects.create(
        endpoint=endpoint,
        provider="trello",
        external_id=f"{slug}-event-1",
        type="trello.card.moved",
        status=InboundEvent.Status.PROCESSED,
        body=json.dumps({"customer": slug}).encode(),
        envelope={"id": f"{slug}-event-1", "type": "trello.card.moved", "data": {}},
        attempts=1,
        attempt_limit=5,
        processed_at=timezone.now(),
    )
    subscription, _ = subscription_create(
        customer=customer, url=f"{DISCARD}/{slug}-hook", event_types=["*"], allow_private=True
    )
    return Objects(
        customers=[customer],
        credentials=[api, signing],
        integrations=[integration],
        deliveries=[
            _delivery(customer, integration, dead=False),
            _delivery(customer, integration, dead=True),
        ],
        endpoints=[endpoint],
        events=[event],
        subscriptions=[subscription],
    )


@pytest.fixture
def world(acme, globex, region_us) -> World:
    a, b = _tenant(acme), _tenant(globex)
    # Shared objects: a key limited to acme must reach them no more than globex's.
    b.credentials += [
        credential_create(
            provider="ga4",
            purpose="api",
            label="SHARED global",
            fields={"measurement_id": "G-SHARED", "api_secret": "shared-secret"},
        ),
        credential_create(
            provider="trello", purpose="api", region=region_us, label="SHARED us", fields=TRELLO_API
        ),
    ]
    b.subscriptions.append(
        subscription_create(url=f"{DISCARD}/SHARED-hook", event_types=["*"], allow_private=True)[0]
    )
    now = timezone.now()
    CircuitBreaker.objects.create(
        provider_key="trello",
        region="us",
        state="open",
        last_error="HTTP 500 for globex",
        failing_deliveries=[d.pk for d in b.deliveries],
        opened_at=now,
        open_until=now + timedelta(hours=1),
    )
    keys = ("globex", "SHARED", *(str(o.key) for o in [*b.deliveries, *b.events]))
    markers = (*keys, *(str(e.public_id) for e in b.endpoints))
    return World(
        acme=acme,
        a=a,
        b=b,
        markers=markers,
        app_a=_client(api_key_create(name="acme-app", customers=[acme])[1]),
        app_all=_client(api_key_create(name="any-app")[1]),
    )


# --- helpers -----------------------------------------------------------------------------


def _rows(queryset) -> list[dict]:
    return list(queryset.order_by("pk").values())


def snapshot(owner: Customer | None) -> dict[str, list[dict]]:
    """Every row of every kind the API reaches, except those ``owner`` owns (None: all)."""

    def others(model, owner_path: str) -> list[dict]:
        rows = model.objects.all()
        return _rows(rows if owner is None else rows.exclude(**{owner_path: owner.pk}))

    return {
        "regions": _rows(Region.objects.all()),
        "customers": _rows(Customer.objects.all()),
        "credentials": others(Credential, "customer"),
        "credential versions": others(CredentialVersion, "credential__customer"),
        "credential audit": others(CredentialAuditEntry, "credential__customer"),
        "integrations": others(Integration, "customer"),
        "deliveries": others(Delivery, "customer"),
        "attempts": others(DeliveryAttempt, "delivery__customer"),
        "endpoints": others(WebhookEndpoint, "customer"),
        "events": others(InboundEvent, "endpoint__customer"),
        # A subscription's signing secrets are credential versions of its customer (above).
        "subscriptions": others(Subscription, "customer"),
        "breakers": _rows(CircuitBreaker.objects.all()),
    }


def assert_unchanged(before: dict, owner: Customer | None, request: str) -> None:
    after = snapshot(owner)
    changed = [table for table in before if before[table] != after[table]]
    assert not changed, f"{request} changed {', '.join(changed)} beyond the key's customer"


def _call(client: APIClient, method: str, path: str, body=None):
    if method in ("get", "head", "options"):
        return getattr(client, method)(path)
    return getattr(client, method)(path, {} if body is None else body, format="json")


def _explain(request: str, response) -> str:
    return f"{request} → {response.status_code}: {response.content[:500]!r}"


# --- request bodies ----------------------------------------------------------------------

NEW_FIELDS = {
    ("trello", "api"): {"api_key": "d" * 32, "token": "e" * 64},
    ("trello", "webhook_signing"): {"secret": "rotated-signing-secret"},
    ("ga4", "api"): {"measurement_id": "G-ROTATED", "api_secret": "rotated"},
}

# Bodies a request on one object needs to succeed were the object visible (the same bodies
# succeed on A's own objects, see test_the_same_requests_reach_a_keys_own_objects); {} if absent.
OBJECT_BODIES = {
    ("/api/v1/customers/{slug}/", "patch"): lambda customer: {"name": "Renamed"},
    ("/api/v1/credentials/{pk}/rotate/", "post"): lambda credential: {
        "fields": NEW_FIELDS[(credential.provider, credential.purpose)],
        "grace_seconds": 0,
    },
    ("/api/v1/credentials/{pk}/revoke/", "post"): lambda credential: {"include_current": True},
    ("/api/v1/subscriptions/{pk}/rotate-secret/", "post"): lambda sub: {"grace_seconds": 0},
}

# Writes on routes without a parameter, acting for the customer ``them`` with a key of the
# customer ``us``: in the isolation test them=B, us=A, and each must be refused; the same
# bodies with them=A must succeed (test_the_same_writes_succeed_for_a_keys_own_customer), so a
# refusal means isolation, not a bad body. A route not listed gets {"customer": them}.
WRITE_BODIES = {
    "/api/v1/regions/": [lambda them, us: {"code": f"{_slug(them)}-land", "name": "Land"}],
    "/api/v1/customers/": [
        lambda them, us: {"slug": f"{_slug(them)}-2", "name": "Second", "region": "us"}
    ],
    "/api/v1/credentials/": [
        lambda them, us: {
            "provider": "shopify",
            "purpose": "api",
            "customer": _slug(them),
            "fields": {"access_token": "shpat_x"},
        }
    ],
    "/api/v1/integrations/": [
        lambda them, us: {
            "customer": _slug(them),
            "provider": "http",
            "config": {"base_url": DISCARD},
        }
    ],
    "/api/v1/deliveries/": [
        lambda them, us: {
            "customer": _slug(them),
            "action": "trello.move_card",
            "input": MOVE_INPUT,
        }
    ],
    # Atomic: an item naming B's customer refuses the whole batch (400). A non-atomic batch
    # answers 200 with that item's 400, as tests/integrations/deliveries/test_batch.py shows.
    "/api/v1/deliveries/batch/": [
        lambda them, us: {
            "atomic": True,
            "items": [
                {"customer": _slug(us), "action": "trello.move_card", "input": MOVE_INPUT},
                {"customer": _slug(them), "action": "trello.move_card", "input": MOVE_INPUT},
            ],
        }
    ],
    "/api/v1/actions/validate/": [
        lambda them, us: {
            "customer": _slug(them),
            "action": "trello.move_card",
            "input": MOVE_INPUT,
        }
    ],
    "/api/v1/dead-letters/retry/": [
        lambda them, us: {"ids": [d.pk for d in them.deliveries]},
        lambda them, us: {"filter": {"customer": _slug(them)}},
    ],
    "/api/v1/webhook-endpoints/": [
        lambda them, us: {
            "customer": _slug(them),
            "provider": "trello",
            "credential": _signing(them),
        },
        # Our endpoint verifying with their secret; their endpoint verifying with ours.
        lambda them, us: {
            "customer": _slug(us),
            "provider": "trello",
            "credential": _signing(them),
        },
        lambda them, us: {
            "customer": _slug(them),
            "provider": "trello",
            "credential": _signing(us),
        },
    ],
    "/api/v1/subscriptions/": [
        lambda them, us: {"customer": _slug(them), "url": f"{DISCARD}/x", "event_types": ["*"]},
    ],
}
# Only admin keys create these (ADMIN_ACTIONS): refused to app keys whoever they name.
ADMIN_ONLY_WRITES = {"/api/v1/regions/", "/api/v1/customers/"}
# Bulk routes act on "those of these the key may see". A 2xx is then no leak if nothing
# changed and the answer is exactly the one to the same request naming nothing that exists
# (no oracle telling B's ids apart): these are those requests, by position in WRITE_BODIES.
BULK_TWINS = {
    "/api/v1/dead-letters/retry/": [
        {"ids": [999_999_999, 999_999_998]},
        {"filter": {"customer": "no-such-customer"}},
    ],
}


def _slug(objects: Objects) -> str:
    return objects.customers[0].slug


def _signing(objects: Objects) -> int:
    return next(c.pk for c in objects.credentials if c.purpose == "webhook_signing")


def _write_bodies(route: Route, them: Objects, us: Objects) -> list[dict]:
    makers = WRITE_BODIES.get(route.template, [lambda them, us: {"customer": _slug(them)}])
    return [maker(them, us) for maker in makers]


def _targets(route: Route, owner: Objects) -> list[tuple[str, object]]:
    """(path, object acted on) for each of ``owner``'s objects of the kind of the route's last
    parameter; any earlier parameter takes ``owner``'s first object of its kind."""
    unmapped = [f"{{{name}}} after '{seg}/'" for name, seg in route.params if seg not in KINDS]
    if unmapped:
        pytest.fail(
            f"{route.template}: no object kind for {', '.join(unmapped)}. Add the segment to "
            "KINDS in tests/test_tenant_isolation.py (and such objects to _tenant) so that this "
            "route is checked for tenant isolation.",
            pytrace=False,
        )
    *outer, (last, last_segment) = route.params
    values = {name: owner.of(segment)[0][1] for name, segment in outer}
    targets = []
    for obj, value in owner.of(last_segment):
        path = route.template.format(**values, **{last: value})
        match = resolve(path)
        assert match.func is route.callback, f"{path} does not resolve to {route.template}"
        targets.append((path, obj))
    return targets


def _listed(body, field: str) -> set[str]:
    """Every value of ``field`` in any object of a JSON document."""
    if isinstance(body, dict):
        found = {str(body[field])} if field in body else set()
        return found.union(*(_listed(v, field) for v in body.values()))
    if isinstance(body, list):
        return set().union(*(_listed(v, field) for v in body))
    return set()


# --- the enumeration itself --------------------------------------------------------------

# DESIGN §7 routes the walk must find, lest a change to it silently enumerate nothing.
DESIGN_ROUTES = {
    "/api/v1/regions/",
    "/api/v1/customers/{slug}/",
    "/api/v1/credentials/{pk}/rotate/",
    "/api/v1/credentials/{pk}/revoke/",
    "/api/v1/integrations/",
    "/api/v1/deliveries/{pk}/retry/",
    "/api/v1/deliveries/{pk}/cancel/",
    "/api/v1/dead-letters/retry/",
    "/api/v1/webhook-endpoints/",
    "/api/v1/inbound-events/{pk}/replay/",
    "/api/v1/subscriptions/{pk}/rotate-secret/",
}


def test_the_walk_finds_every_route_with_paths_that_resolve():
    assert {r.template for r in ROUTES} >= DESIGN_ROUTES
    for route in ROUTES:
        assert route.methods, route.template
        if not route.params:
            assert resolve(route.template).func is route.callback, route.template


def test_a_parameter_of_an_unknown_kind_fails_asking_for_a_mapping(world):
    route = Route("/api/v1/widgets/{pk}/", (("pk", "widgets"),), ("get",), callback=None)
    with pytest.raises(pytest.fail.Exception, match="Add the segment to KINDS"):
        _targets(route, world.b)


# --- a key limited to A: B's objects ------------------------------------------------------


def _object_body(route: Route, method: str, obj) -> dict:
    return OBJECT_BODIES.get((route.template, method), lambda _: {})(obj)


@pytest.mark.parametrize(("route", "method"), OBJECT_CASES, ids=_case_ids(OBJECT_CASES))
def test_a_key_limited_to_a_cannot_reach_bs_objects(world, route, method):
    before = snapshot(world.acme)
    for path, obj in _targets(route, world.b):
        body = _object_body(route, method, obj)
        request = f"{method.upper()} {path} {body}"
        response = _call(world.app_a, method, path, body)
        assert response.status_code in REFUSED, _explain(request, response)
        echo = response.content.decode().replace(path, "")  # the caller's own words
        assert not [m for m in world.markers if m in echo], _explain(request, response)
        assert_unchanged(before, world.acme, request)


@pytest.mark.parametrize(("route", "method"), OBJECT_CASES, ids=_case_ids(OBJECT_CASES))
def test_the_same_requests_reach_a_keys_own_objects(world, route, method):
    for path, obj in _targets(route, world.a):
        body = _object_body(route, method, obj)
        response = _call(world.app_a, method, path, body)
        request = f"{method.upper()} {path} {body}"
        assert response.status_code < 500, _explain(request, response)
        if method in ("get", "head"):
            assert response.status_code == 200, _explain(request, response)
        else:  # PATCH customers/acme/ is a 403 (admin scope); a 409 still found the object
            assert response.status_code != 404, _explain(request, response)


OBJECT_ROUTES = [r for r in ROUTES if r.params]


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=[r.template for r in OBJECT_ROUTES])
def test_options_tells_bs_objects_from_none_other(world, route):
    """OPTIONS describes the route, not the object: the same answer for B's objects as for
    A's, so it is no oracle."""
    own_path = _targets(route, world.a)[0][0]
    own = world.app_a.options(own_path)
    assert own.status_code < 500
    for path, _ in _targets(route, world.b):
        response = world.app_a.options(path)
        assert (response.status_code, response.content) == (own.status_code, own.content), path


# --- a key limited to A: routes without a parameter ---------------------------------------

READ_CASES = [(r, m) for r, m in LIST_CASES if m in ("get", "head")]
WRITE_CASES = [(r, m) for r, m in LIST_CASES if m not in ("get", "head")]


@pytest.mark.parametrize(("route", "method"), READ_CASES, ids=_case_ids(READ_CASES))
def test_lists_show_nothing_of_b(world, route, method):
    for query in ("", "?customer=globex"):
        response = _call(world.app_a, method, route.template + query)
        assert response.status_code == 200, _explain(route.template + query, response)
        if method == "head":
            continue
        text = response.content.decode()
        leaked = [m for m in world.markers if m in text]
        assert not leaked, f"GET {route.template}{query} shows {leaked}: {text[:500]}"
        if route.segment in KINDS:
            listed = _listed(response.json(), KINDS[route.segment][2])
            assert not listed & world.b.api_ids(route.segment), f"{route.template}: {text[:500]}"
            if not query:  # sanity: not empty for want of anything to list
                assert listed & world.a.api_ids(route.segment), f"{route.template}: {text[:500]}"


@pytest.mark.parametrize(("route", "method"), WRITE_CASES, ids=_case_ids(WRITE_CASES))
def test_writes_cannot_act_for_b(world, route, method):
    before = snapshot(world.acme)
    twins = BULK_TWINS.get(route.template, [])
    for i, body in enumerate([*_write_bodies(route, world.b, world.a), {}]):
        request = f"{method.upper()} {route.template} {body}"
        response = _call(world.app_a, method, route.template, body)
        assert response.status_code < 500, _explain(request, response)
        assert_unchanged(before, world.acme, request)
        if body == {} or response.status_code in WRITE_REFUSED:
            continue
        assert i < len(twins) and 200 <= response.status_code < 300, _explain(request, response)
        twin = _call(world.app_a, method, route.template, twins[i])
        assert (twin.status_code, twin.json()) == (response.status_code, response.json()), (
            f"{request} answers otherwise than for objects that do not exist: an oracle"
        )


@pytest.mark.parametrize(("route", "method"), WRITE_CASES, ids=_case_ids(WRITE_CASES))
def test_the_same_writes_succeed_for_a_keys_own_customer(world, route, method):
    bodies = _write_bodies(route, world.a, world.a)
    statuses = [_call(world.app_a, method, route.template, b).status_code for b in bodies]
    if route.template in ADMIN_ONLY_WRITES:
        assert set(statuses) == {403}, statuses
    else:
        assert any(200 <= s < 300 for s in statuses), (
            f"{method.upper()} {route.template}: none of {bodies} succeeds for the key's own "
            f"customer ({statuses}), so its refusal for B proves nothing. Give the route "
            "bodies in WRITE_BODIES that succeed for A."
        )


def test_a_key_limited_to_a_cannot_subscribe_to_every_customers_events(world):
    """A subscription without a customer receives B's events too."""
    before = snapshot(world.acme)
    body = {"url": f"{DISCARD}/all", "event_types": ["*"]}
    response = world.app_a.post("/api/v1/subscriptions/", body, format="json")
    assert response.status_code in WRITE_REFUSED, _explain(str(body), response)
    assert_unchanged(before, world.acme, str(body))


# --- admin-scoped actions ----------------------------------------------------------------

SHOPIFY_API = {"access_token": "shpat_admin_only"}
ADMIN_ACTIONS = [
    ("post", "/api/v1/regions/", {"code": "ap", "name": "Asia Pacific"}),
    ("post", "/api/v1/customers/", {"slug": "initech", "name": "Initech", "region": "eu"}),
    ("patch", "/api/v1/customers/acme/", {"name": "Acme renamed"}),
    ("patch", "/api/v1/customers/acme/", {"region": "us"}),
    ("patch", "/api/v1/customers/acme/", {"tier": "enterprise"}),
    ("patch", "/api/v1/customers/acme/", {"active": False}),
    ("patch", "/api/v1/customers/globex/", {"tier": "premium"}),
    ("post", "/api/v1/credentials/", {"provider": "shopify", "fields": SHOPIFY_API}),
    (
        "post",
        "/api/v1/credentials/",
        {"provider": "shopify", "customer": None, "fields": SHOPIFY_API},
    ),
    (
        "post",
        "/api/v1/credentials/",
        {"provider": "shopify", "region": "eu", "fields": SHOPIFY_API},
    ),
    (
        "post",
        "/api/v1/credentials/",
        {"provider": "shopify", "tier": "enterprise", "fields": SHOPIFY_API},
    ),
    (
        "post",
        "/api/v1/integrations/",
        {"customer": "acme", "provider": "http", "config": {"base_url": DISCARD}, "trusted": True},
    ),
    (
        "post",
        "/api/v1/subscriptions/",
        {"customer": "acme", "url": f"{DISCARD}/p", "event_types": ["*"], "allow_private": True},
    ),
]


@pytest.mark.parametrize("key", ["app_a", "app_all"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    ADMIN_ACTIONS,
    ids=[f"{m.upper()} {p} {sorted(b)}" for m, p, b in ADMIN_ACTIONS],
)
def test_app_keys_get_scope_required_for_admin_actions(world, key, method, path, body):
    before = snapshot(None)
    response = _call(getattr(world, key), method, path, body)
    request = f"{key}: {method.upper()} {path} {body}"
    assert response.status_code == 403, _explain(request, response)
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/scope-required"), _explain(request, response)
    assert_unchanged(before, None, request)


def test_an_unlimited_app_key_may_not_create_a_global_subscription_with_allow_private(world):
    body = {"url": f"{DISCARD}/p", "event_types": ["*"], "allow_private": True}
    before = snapshot(None)
    response = world.app_all.post("/api/v1/subscriptions/", body, format="json")
    assert response.status_code == 403, _explain(str(body), response)
    assert response.json()["type"].endswith("/scope-required")
    assert_unchanged(before, None, str(body))


# --- internal operations -----------------------------------------------------------------


@pytest.mark.parametrize("owner", ["b", "a"])
@pytest.mark.parametrize("path", ["/api/v1/deliveries/", "/api/v1/actions/validate/"])
def test_the_internal_send_is_refused_at_the_api(world, path, owner):
    objects = getattr(world, owner)
    body = {
        "customer": "acme",
        "action": "standard_webhooks.send",
        "input": {"subscription": objects.subscriptions[0].pk, "event": objects.events[0].pk},
    }
    deliveries = Delivery.objects.count()
    response = world.app_a.post(path, body, format="json")
    assert response.status_code == 400, _explain(f"POST {path} {body}", response)
    assert "action" in response.json()["errors"]
    assert Delivery.objects.count() == deliveries
