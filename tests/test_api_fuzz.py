"""Schemathesis over the published schema (/api/schema/): every operation, with generated valid
and invalid input, answers below 500, and every refusal is problem+json; and every POST accepts
the bodies its schema says are valid (no "schema constraints don't match API validation").

Each case is sent twice through the real WSGI stack (all middleware): with an admin key and with
an app key limited to one customer. A path id is sometimes swapped for a real object's, so the
cases reach past the 404 into the views and services. Runs on the suite's database, so the
PostgreSQL phase of ``.ci/run`` covers PostgreSQL. Locally, more cases:
``SWITCHYARD_FUZZ_EXAMPLES=200 pytest tests/test_api_fuzz.py``."""

import copy
import json
import os
import zlib
from dataclasses import dataclass
from datetime import timedelta

import jsonschema
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from credentials.models import Credential
from credentials.services import credential_create
from customers.models import Customer
from customers.services import api_key_create
from integrations.api.schema import credential_fields_component
from integrations.deliveries.services import delivery_create
from integrations.registry import get_provider, providers
from integrations.selectors import integration_active_get
from integrations.services import integration_create
from webhooks.models import EndpointSource, InboundEvent
from webhooks.services import endpoint_create, subscription_create
from webhooks.services.sources import BROKER_CREDENTIALS

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("SWITCHYARD_FUZZ_EXAMPLES", "12"))
TRELLO_API = {"api_key": "k" * 32, "token": "t" * 64}
# workflow.proceed names stages of the customer's integration; a stage is an existing object,
# supplied like a customer is.
STAGES = {"doing": "a" * 24, "done": "b" * 24}
CARD = "card1"
INTEGRATIONS = {
    "http": {"base_url": "https://hooks.example/acme"},
    "selenium": {"base_url": "https://grid.example"},
    "shopify": {"shop": "acme-shop"},
}


@dataclass
class Seeded:
    """Real objects of acme's, by the path segment that names them, and the body fields that
    refer to them."""

    ids: dict[str, str]  # "credentials" → "17"
    customer: Customer
    slug: str
    bare_slug: str  # a customer without integrations
    signing_credential: int
    admin_headers: dict[str, str]
    limited_headers: dict[str, str]

    def aim(self, case) -> None:
        """Swap every other generated id, slug or reference in a body for a real one (chosen by
        the generated value, so a failing case replays the same way)."""
        segment = case.path.removeprefix("/api/v1/").split("/")[0]
        for name, value in (case.path_parameters or {}).items():
            if _heads(value) and (name == "slug" or segment in self.ids):
                case.path_parameters[name] = self.slug if name == "slug" else self.ids[segment]
        body = case.body if isinstance(case.body, dict) else {}
        if "customer" in body and _heads(body["customer"]):
            body["customer"] = self.slug
        if "credential" in body and _heads(body["credential"]):
            body["credential"] = self.signing_credential

    def supply(self, case) -> None:
        """Make every reference a body or path holds name an existing object (customer, region,
        credential, stage, card, a customer's integration): what a schema cannot know, only the
        data can. A new integration is for a customer that has none yet (one active per
        provider). Objects a body needs and the seed lacks are made here, in the case's
        savepoint."""
        segment = case.path.removeprefix("/api/v1/").split("/")[0]
        for name, value in (case.path_parameters or {}).items():
            real = self.slug if name == "slug" else self.ids.get(segment, value)
            case.path_parameters[name] = real
        body = case.body if isinstance(case.body, dict) else {}
        slug = self.bare_slug if case.path == "/api/v1/integrations/" else self.slug
        self._refer(body, slug)
        # A batch's items are single POSTs' bodies.
        for item in body.get("items") or []:
            if isinstance(item, dict):
                self._refer(item, self.slug)
        if case.path == "/api/v1/credentials/{id}/rotate/":
            case.path_parameters["id"] = str(self._rotated(body.get("fields")).pk)
        if case.path == "/api/v1/webhook-endpoints/":
            self._endpoint_references(body)

    def _refer(self, body: dict, slug: str) -> None:
        references = {"customer": slug, "region": "us", "credential": self.signing_credential}
        body.update(
            {name: value for name, value in references.items() if body.get(name) is not None}
        )
        stage_input = body.get("input") if body.get("action") == "workflow.proceed" else None
        if isinstance(stage_input, dict):
            stage_input["item"] = CARD
            stage_input.update({n: "done" for n in ("to", "from") if n in stage_input})

    def _credential(self, provider: str, purpose: str) -> Credential:
        """acme's credential of ``provider`` and ``purpose`` (the app's own for an OAuth
        client), made with placeholder fields when there is none yet."""
        customer = None if purpose == Credential.Purpose.OAUTH_CLIENT else self.customer
        found = Credential.objects.filter(
            provider=provider, purpose=purpose, customer=customer, region=None, tier=""
        ).first()
        if found is not None:
            return found
        declared = get_provider(provider).credential_fields[purpose]
        fields = {field.name: f"seeded-{field.name}" for field in declared}
        return credential_create(
            provider=provider, purpose=purpose, customer=customer, fields=fields
        )

    def _rotated(self, fields) -> Credential:
        """A credential whose provider and purpose take ``fields``: the first field set of the
        published schema they are valid for (the seeded one if none, which the API refuses)."""
        for (provider, purpose), schema in FIELD_SETS.items():
            if jsonschema.Draft7Validator(schema).is_valid(fields):
                return self._credential(provider, purpose)
        return Credential.objects.get(pk=self.ids["credentials"])

    def _endpoint_references(self, body: dict) -> None:
        """The provider's signing credential, the source's broker credential, and for Miro
        polling an active Miro integration, all acme's."""
        provider, source = body.get("provider"), body.get("source", EndpointSource.WEBHOOK)
        if not isinstance(provider, str) or provider not in PROVIDER_KEYS:
            return
        if "credential" in body:
            signing = self._credential(provider, Credential.Purpose.WEBHOOK_SIGNING)
            body["credential"] = signing.pk
        if body.get("source_credential") is not None and source in BROKER_CREDENTIALS:
            broker = self._credential(BROKER_CREDENTIALS[source], Credential.Purpose.API)
            body["source_credential"] = broker.pk
        polls = source == EndpointSource.MIRO_POLL
        if polls and not integration_active_get(customer=self.customer, provider_key="miro"):
            integration_create(customer=self.customer, provider_key="miro", config={})


def _heads(value) -> bool:
    return zlib.crc32(repr(value).encode()) % 2 == 0


@pytest.fixture
def seeded(acme, region_us) -> Seeded:
    api = credential_create(provider="trello", purpose="api", customer=acme, fields=TRELLO_API)
    signing = credential_create(
        provider="trello", purpose="webhook_signing", customer=acme, fields={"secret": "s" * 32}
    )
    integration = integration_create(
        customer=acme,
        provider_key="trello",
        config={"base_url": "https://trello.example/1", "stages": STAGES},
    )
    # The providers that cannot be addressed without an integration (shop, Grid, endpoint).
    for provider, config in INTEGRATIONS.items():
        integration_create(customer=acme, provider_key=provider, config=config)
    delivery = delivery_create(
        api_key=None,
        customer=acme.slug,
        action="trello.move_card",
        input={"card_id": "card1", "list_id": "c" * 24},
    )[0]
    endpoint = endpoint_create(customer=acme, provider="trello", credential=signing)
    event = InboundEvent.objects.create(
        endpoint=endpoint,
        provider="trello",
        external_id="fuzz-1",
        type="trello.card.moved",
        status=InboundEvent.Status.DEAD,
        body=json.dumps({"action": {}}).encode(),
        envelope={"id": "fuzz-1", "type": "trello.card.moved", "data": {}},
        attempts=5,
        attempt_limit=5,
        processed_at=timezone.now() - timedelta(minutes=1),
    )
    subscription, _ = subscription_create(
        customer=acme, url="https://hooks.example/acme", event_types=["*"]
    )
    admin_key = api_key_create(name="fuzz-admin", scope="admin")[1]
    limited_key = api_key_create(name="fuzz-acme", customers=[acme])[1]
    return Seeded(
        ids={
            "credentials": str(api.pk),
            "deliveries": str(delivery.pk),
            "inbound-events": str(event.pk),
            "integrations": str(integration.pk),
            "subscriptions": str(subscription.pk),
            "webhook-endpoints": str(endpoint.public_id),
        },
        customer=acme,
        slug=acme.slug,
        bare_slug=Customer.objects.create(slug="initech", name="Initech", region=region_us).slug,
        signing_credential=signing.pk,
        admin_headers={"Authorization": f"Bearer {admin_key}"},
        limited_headers={"Authorization": f"Bearer {limited_key}"},
    )


@pytest.fixture
def wsgi(settings):
    """Django's WSGI handler, without closing the test's connection after each request (it
    lives in the test's transaction), as Django's test client does. Schemathesis sends
    ``Host: localhost``."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _published_schema() -> dict:
    """What /api/schema/ serves, built when the module is collected (schemathesis' lazy fixture
    loading does not run on the pytest in use, and no request can pass ALLOWED_HOSTS yet)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


PUBLISHED = _published_schema()
schema = schemathesis.openapi.from_dict(copy.deepcopy(PUBLISHED))
PROVIDER_KEYS = {provider.key for provider in providers()}
# Each provider's credential fields per purpose, as published (for the credential a rotation
# of those fields needs).
FIELD_SETS = {
    (provider.key, purpose): PUBLISHED["components"]["schemas"][
        credential_fields_component(provider.key, purpose)
    ]
    for provider in providers()
    for purpose in provider.credential_fields
}


def _refusal_is_a_problem(response) -> None:
    if response.status_code >= 400 and response.status_code != 405:
        media_type = response.headers.get("content-type", [""])[0].split(";")[0]
        assert media_type == "application/problem+json", (response.status_code, media_type)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx(case, seeded, wsgi):
    seeded.aim(case)
    for headers in (seeded.admin_headers, seeded.limited_headers):
        response = case.call(app=wsgi, headers=headers)
        case.validate_response(response, checks=[not_a_server_error], headers=headers)
        _refusal_is_a_problem(response)


# What the API checks that the schema does not state, by the operation and the error paths it
# refuses with. GA4 parameter and user property names: a rule on keys, which OpenAPI 3.0 cannot
# state (no propertyNames). Shopify's "shop or base_url" and Miro's "board_id once stages are
# mapped": rules across config fields, which the config serializers check in validate() and the
# rendered schema does not know yet. A refusal naming anything else is a mismatch.
GA4_NAMES = (("input", "events", "params"), ("input", "user_properties"))
# A scheduled delivery's time is bounded relative to now (at most 90 days ahead), which no
# schema of a date-time can say.
DELIVERY_RULES = (*GA4_NAMES, ("not_before",))
# A batch item is a single POST's body, and may not reuse another item's idempotency key with
# a different body: uniqueness across array items, which no schema can say.
BATCH_ITEM_RULES = (*DELIVERY_RULES, ("idempotency_key",))
UNSTATED_RULES = {
    "/api/v1/deliveries/": DELIVERY_RULES,
    "/api/v1/deliveries/batch/": tuple(("items", *rule) for rule in BATCH_ITEM_RULES),
    "/api/v1/actions/validate/": GA4_NAMES,
    "/api/v1/integrations/": (("config", "shop"), ("config", "board_id")),
}

accepting = schemathesis.openapi.from_dict(copy.deepcopy(PUBLISHED))
accepting.config.generation.update(
    modes=[GenerationMode.POSITIVE], allow_x00=False, allow_extra_parameters=False
)


def _error_paths(errors, prefix=()) -> list[tuple]:
    if isinstance(errors, dict):
        return [p for key, value in errors.items() for p in _error_paths(value, (*prefix, key))]
    return [prefix]


def _names_only(errors, rules) -> bool:
    """The errors name fields under ``rules`` only (list indexes, such as "events", "0",
    "params", name no rule)."""
    paths = [tuple(p for p in path if not p.isdigit()) for path in _error_paths(errors)]
    return bool(paths) and all(any(path[: len(r)] == r for r in rules) for path in paths)


def _only_unstated(case, response) -> bool:
    """A 400 naming only rules JSON Schema cannot state for this operation."""
    rules = UNSTATED_RULES.get(case.path)
    if response.status_code != 400 or not rules:
        return False
    return _names_only(response.json().get("errors", {}), rules)


def _batch_items_accepted(case, response) -> None:
    """A batch answers 200 whatever its items' fate: each schema-valid item is stored, replayed
    or refused for a rule no schema states."""
    if case.path != "/api/v1/deliveries/batch/" or response.status_code != 200:
        return
    for index, result in enumerate(response.json()["results"]):
        if result["status"] in (400, 422):
            errors = result["problem"].get("errors", {})
            assert _names_only(errors, BATCH_ITEM_RULES), (index, result["problem"])


@accepting.include(method="POST").parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_schema_valid_bodies_are_accepted(case, seeded, wsgi):
    """Every case starts from the seeded objects (a savepoint rolled back after it), so one
    case's region or idempotency key does not refuse the next."""
    with transaction.atomic():
        seeded.supply(case)
        response = case.call(app=wsgi, headers=seeded.admin_headers)
        transaction.set_rollback(True)
    if _only_unstated(case, response):
        return
    _batch_items_accepted(case, response)
    case.validate_response(
        response, checks=[positive_data_acceptance], headers=seeded.admin_headers
    )
