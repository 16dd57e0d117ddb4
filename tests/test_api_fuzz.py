"""Schemathesis over the published schema (/api/schema/): every operation, with generated valid
and invalid input, answers below 500, and every refusal is problem+json.

Each case is sent twice through the real WSGI stack (all middleware): with an admin key and with
an app key limited to one customer. A path id is sometimes swapped for a real object's, so the
cases reach past the 404 into the views and services. Runs on the suite's database, so the
PostgreSQL phase of ``.ci/run`` covers PostgreSQL. Locally, more cases:
``SWITCHYARD_FUZZ_EXAMPLES=200 pytest tests/test_api_fuzz.py``."""

import json
import os
import zlib
from dataclasses import dataclass
from datetime import timedelta

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from credentials.services import credential_create
from customers.services import api_key_create
from integrations.deliveries.services import delivery_create
from integrations.services import integration_create
from webhooks.models import InboundEvent
from webhooks.services import endpoint_create, subscription_create

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("SWITCHYARD_FUZZ_EXAMPLES", "12"))
TRELLO_API = {"api_key": "k" * 32, "token": "t" * 64}


@dataclass
class Seeded:
    """Real objects of acme's, by the path segment that names them, and the body fields that
    refer to them."""

    ids: dict[str, str]  # "credentials" → "17"
    slug: str
    signing_credential: int
    admin_headers: dict[str, str]
    limited_headers: dict[str, str]

    def aim(self, case) -> None:
        """Swap every other generated id, slug or reference in a body for a real one (chosen by
        the generated value, so a failing case replays the same way)."""
        segment = case.path.removeprefix("/api/v1/").split("/")[0]
        for name, value in (case.path_parameters or {}).items():
            if _heads(value):
                case.path_parameters[name] = self.slug if name == "slug" else self.ids[segment]
        body = case.body if isinstance(case.body, dict) else {}
        if "customer" in body and _heads(body["customer"]):
            body["customer"] = self.slug
        if "credential" in body and _heads(body["credential"]):
            body["credential"] = self.signing_credential


def _heads(value) -> bool:
    return zlib.crc32(repr(value).encode()) % 2 == 0


@pytest.fixture
def seeded(acme, region_us) -> Seeded:
    api = credential_create(provider="trello", purpose="api", customer=acme, fields=TRELLO_API)
    signing = credential_create(
        provider="trello", purpose="webhook_signing", customer=acme, fields={"secret": "s" * 32}
    )
    integration = integration_create(
        customer=acme, provider_key="trello", config={"base_url": "https://trello.example/1"}
    )
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
        },
        slug=acme.slug,
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


schema = schemathesis.openapi.from_dict(_published_schema())


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
