"""``POST /api/v1/dead-letters/retry/`` says what it acts on (DESIGN §11): unknown keys are
refused naming the known ones, an empty filter needs ``"all": true``, and ``?dry_run=true``
answers the count without retrying anything."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from customers.services import api_key_create
from integrations.deliveries import services
from integrations.deliveries.api.serializers import MAX_BULK_IDS
from integrations.models import Delivery
from tests.integrations.deliveries.conftest import CARD

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
RETRY = "/api/v1/dead-letters/retry/"
FILTER_FIELDS = "action, created_after, created_before, customer, dead_reason, provider"


@pytest.fixture
def dead(acme, globex):
    """Two dead letters of acme's, one of globex's, one live delivery of acme's."""
    ids = {}
    for n, customer in enumerate(["acme", "acme", "globex", "acme"]):
        delivery, _ = services.delivery_create(
            api_key=None,
            customer=customer,
            action="trello.move_card",
            input={"card_id": CARD, "list_id": f"{n:024x}"},
        )
        ids.setdefault(customer, []).append(delivery.pk)
    Delivery.objects.filter(pk__in=[*ids["acme"][:2], *ids["globex"]]).update(
        status="dead", dead_reason="attempts_exhausted", finished_at=timezone.now()
    )
    return ids


def _still_dead() -> int:
    return Delivery.objects.filter(status="dead").count()


def _refused(response) -> dict:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert _still_dead() == 3
    return response.json()["errors"]


@pytest.mark.parametrize(
    ("body", "field", "known"),
    [
        ({"filter": {"provdier": "trello"}}, ["filter", "provdier"], FILTER_FIELDS),
        ({"filter": {"status": "pending"}}, ["filter", "status"], FILTER_FIELDS),
        ({"idz": [1]}, ["idz"], "all, filter, ids"),
        ({"all": True, "dry": True}, ["dry"], "all, filter, ids"),
    ],
)
def test_an_unknown_key_is_refused_naming_the_known_ones(api, dead, body, field, known):
    errors = _refused(api.post(RETRY, body, format="json"))
    for name in field:
        errors = errors[name]
    assert errors == [f"Unknown field. Known fields: {known}."]


@pytest.mark.parametrize("body", [{}, {"filter": {}}, {"all": False}, {"all": False, "filter": {}}])
def test_an_empty_filter_needs_all_true(api, dead, body):
    errors = _refused(api.post(RETRY, body, format="json"))
    assert '"all": true' in errors["all"][0]


@pytest.mark.parametrize(
    "body",
    [
        {"all": True, "filter": {"provider": "trello"}},
        {"all": True, "ids": [1]},
        {"ids": [1], "filter": {"provider": "trello"}},
        {"ids": []},
        {"ids": list(range(1, MAX_BULK_IDS + 2))},
        {"all": "yes please"},
    ],
)
def test_contradictory_or_unbounded_bodies_are_refused(api, dead, body):
    _refused(api.post(RETRY, body, format="json"))


def test_all_true_retries_every_dead_letter_the_key_may_see(acme, dead):
    _, raw = api_key_create(name="acme-only", customers=[acme])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post(RETRY, {"all": True}, format="json")
    assert (response.status_code, response.json()) == (202, {"retried": 2})
    assert (
        list(Delivery.objects.filter(status="dead").values_list("pk", flat=True)) == dead["globex"]
    )


DRY_RUN_BODIES = {
    "all": (lambda dead: {"all": True}, 3),
    "filter": (lambda dead: {"filter": {"customer": "acme"}}, 2),
    # The live delivery and an id of nothing are no dead letters.
    "ids": (lambda dead: {"ids": [*dead["acme"], *dead["globex"], 999_999]}, 3),
}


@pytest.mark.parametrize("kind", DRY_RUN_BODIES)
def test_a_dry_run_counts_without_retrying(api, dead, kind):
    make_body, count = DRY_RUN_BODIES[kind]
    body = make_body(dead)
    response = api.post(f"{RETRY}?dry_run=true", body, format="json")
    assert (response.status_code, response.json()) == (200, {"dry_run": True, "would_retry": count})
    assert _still_dead() == 3
    response = api.post(f"{RETRY}?dry_run=false", body, format="json")
    assert (response.status_code, response.json()) == (202, {"retried": count})
    assert _still_dead() == 3 - count


def test_a_dry_run_flag_that_is_no_boolean_is_refused(api, dead):
    errors = _refused(api.post(f"{RETRY}?dry_run=maybe", {"all": True}, format="json"))
    assert list(errors) == ["dry_run"]
