"""``PATCH /api/v1/integrations/{id}/`` (DESIGN §11): a change is validated as a creation is, and
trust follows the same rules as in the admin."""

import pytest

from integrations.models import Integration
from integrations.services import integration_create

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.fixture
def trello(acme):
    return integration_create(
        customer=acme,
        provider_key="trello",
        config={"board_id": "b1", "retry": {"max_attempts": 5}},
    )


def _patch(client, integration, body):
    return client.patch(f"/api/v1/integrations/{integration.pk}/", body, format="json")


def test_patch_changes_what_it_names(acme_api, trello):
    response = _patch(acme_api, trello, {"active": False, "config": {"board_id": "b2"}})
    assert response.status_code == 200, response.content
    assert (response.json()["active"], response.json()["config"]) == (False, {"board_id": "b2"})
    trello.refresh_from_db()
    assert (trello.active, trello.config, trello.provider_key) == (
        False,
        {"board_id": "b2"},
        "trello",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config": {"retry": {"max_attempts": 51}}}, ["config", "retry", "max_attempts"]),
        ({"config": {"bored_id": "b2"}}, ["config", "bored_id"]),
        ({"config": []}, ["config"]),
        ({"provider": "nope"}, ["provider"]),
        # The saved config must suit a new provider: http needs a base_url.
        ({"provider": "http"}, ["config", "base_url"]),
        ({"customer": "globex"}, ["customer"]),  # a customer this key cannot see
        ({"active": "sometimes"}, ["active"]),
    ],
)
def test_patch_is_validated_as_post_is(acme_api, trello, globex, body, field):
    before = Integration.objects.values().get(pk=trello.pk)
    response = _patch(acme_api, trello, body)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    errors = response.json()["errors"]
    for name in field:
        errors = errors[name]
    assert errors
    assert Integration.objects.values().get(pk=trello.pk) == before


def test_patch_keeps_one_active_integration_per_customer_and_provider(acme_api, acme, trello):
    second = integration_create(customer=acme, provider_key="trello", active=False)
    response = _patch(acme_api, second, {"active": True})
    assert response.status_code == 400, response.content
    assert "already has an active integration" in response.json()["detail"]


def test_only_an_admin_key_marks_an_integration_trusted(api, acme_api, trello):
    refused = _patch(acme_api, trello, {"trusted": True})
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/scope-required")
    assert _patch(api, trello, {"trusted": True}).json()["trusted"] is True


def test_a_new_base_url_drops_trust_unless_the_admin_sets_it_again(api, acme_api, trello):
    Integration.objects.filter(pk=trello.pk).update(trusted=True)
    moved = _patch(acme_api, trello, {"config": {"base_url": "https://trello.example.com"}})
    assert (moved.status_code, moved.json()["trusted"]) == (200, False)
    trusted_again = _patch(
        api, trello, {"config": {"base_url": "https://trello.example.com"}, "trusted": True}
    )
    assert trusted_again.json()["trusted"] is True
