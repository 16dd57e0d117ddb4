"""Miro board polling with expiring OAuth tokens: a token about to expire is refreshed before
the board is listed; a refused refresh token stops the poll with the re-authorise reason."""

from datetime import timedelta

import pytest
from django.utils import timezone

from credentials.services import credential_create, credential_resolve
from integrations.services import integration_create
from webhooks.models import WebhookEndpoint
from webhooks.services import endpoint_source_create
from webhooks.sources.miro_poll import miro_board_poll

pytestmark = pytest.mark.django_db

BOARD = "uXjVTestBoard="
CLIENT = {"client_id": "app-client-id", "client_secret": "app-client-secret-7f3a"}


@pytest.fixture
def endpoint(acme, fake_provider):
    def make(refresh: str, minutes_left: int):
        integration_create(
            customer=acme,
            provider_key="miro",
            config={"base_url": f"{fake_provider.url}/miro"},
            trusted=True,  # the app's client secret may go to the fake's token endpoint
        )
        credential_create(provider="miro", purpose="oauth_client", fields=dict(CLIENT))
        expires_at = (timezone.now() + timedelta(minutes=minutes_left)).isoformat()
        credential_create(
            provider="miro",
            purpose="api",
            customer=acme,
            fields={"access_token": "at-seed", "refresh_token": refresh, "expires_at": expires_at},
        )
        return endpoint_source_create(
            customer=acme,
            provider="miro",
            source="miro_poll",
            source_config={"board_id": BOARD, "interval_seconds": 1, "page_size": 10},
        )

    return make


def test_a_due_token_is_refreshed_before_the_board_is_listed(acme, endpoint, fake_provider):
    polled = endpoint(refresh="rt-seed", minutes_left=1)
    result = miro_board_poll(endpoint_id=polled.pk)
    assert result.error == "" and result.complete
    calls = [(e["method"], e["path"]) for e in fake_provider.journal()]
    assert calls == [
        ("POST", "/miro/v1/oauth/token"),
        ("GET", f"/miro/v2/boards/{BOARD}/items"),
    ]
    fresh = credential_resolve(provider="miro", customer=acme)
    assert fresh.version == 2
    listing = fake_provider.journal(f"/miro/v2/boards/{BOARD}")[0]
    assert listing["headers"]["Authorization"] == f"Bearer {fresh.fields['access_token']}"


def test_a_valid_token_is_used_as_is(acme, endpoint, fake_provider):
    polled = endpoint(refresh="rt-seed", minutes_left=60)
    assert miro_board_poll(endpoint_id=polled.pk).complete
    assert [e["method"] for e in fake_provider.journal()] == ["GET"]
    assert credential_resolve(provider="miro", customer=acme).version == 1


def test_a_refused_refresh_token_stops_the_poll_with_the_reauthorise_reason(
    endpoint, fake_provider
):
    polled = endpoint(refresh="revoked-rt", minutes_left=-5)
    result = miro_board_poll(endpoint_id=polled.pk)
    assert "re-authorise" in result.error
    assert [e["method"] for e in fake_provider.journal()] == ["POST"]  # never listed
    stored = WebhookEndpoint.objects.get(pk=polled.pk)
    assert "re-authorise" in stored.source_error and "revoked-rt" not in stored.source_error
    assert stored.source_lease_until is None
