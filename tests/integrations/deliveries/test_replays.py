"""Every file in tests/replays/deliveries/ is a delivery captured with ``manage.py
export_replay``; each is replayed through the engine against the provider answers it recorded,
and must end the same. (Inbound event replays live in tests/replays/inbound/.)"""

import json
import re
from pathlib import Path

import pytest
import responses
from django.utils import timezone
from requests.exceptions import ConnectionError as RequestsConnectionError

from customers.models import Customer, Region
from integrations.deliveries import services
from integrations.deliveries.replays import REPLAY_FORMAT
from integrations.models import Delivery
from integrations.providers.types import CredentialPurpose
from integrations.registry import get_provider
from integrations.services import integration_create
from tests.integrations.limits.fixtures import clear_limit_state

REPLAYS = sorted((Path(__file__).resolve().parents[2] / "replays" / "deliveries").glob("*.json"))

pytestmark = pytest.mark.django_db


def _answer(recorded: dict):
    response = recorded["response"]
    if response is None:
        return {"body": RequestsConnectionError(recorded["error_class"] or "connection failed")}
    headers = {
        k: v
        for k, v in response["headers"].items()
        if k.lower()
        not in ("content-length", "content-encoding", "transfer-encoding", "connection")
    }
    return {"status": response["status"], "headers": headers, "body": response["body"]}


def _replay_setup(replay: dict) -> Delivery:
    from credentials.services import credential_create

    recorded = replay["delivery"]
    region = Region.objects.create(code=recorded["customer"]["region"], name="replay")
    customer = Customer.objects.create(
        slug=recorded["customer"]["slug"],
        name="replay",
        region=region,
        tier=recorded["customer"]["tier"],
    )
    if recorded["integration_config"] is not None:
        integration_create(
            customer=customer,
            provider_key=recorded["provider"],
            config=recorded["integration_config"],
        )
    fields = get_provider(recorded["provider"]).credential_fields.get(CredentialPurpose.API, [])
    if fields:
        credential_create(
            provider=recorded["provider"],
            purpose=CredentialPurpose.API,
            customer=customer,
            fields={f.name: f"replay-{f.name}-value" for f in fields},
        )
    # The stored input is already in provider terms, so the call is replayed as the provider
    # operation it was routed to (a capability only renames stages on the way in and out).
    delivery, _ = services.delivery_create(
        api_key=None,
        customer=customer.slug,
        action=f"{recorded['provider']}.{recorded['operation']}",
        input=recorded["input"],
    )
    return delivery


@pytest.mark.parametrize("path", REPLAYS, ids=[p.stem for p in REPLAYS])
@responses.activate
def test_replay(path):
    replay = json.loads(path.read_text())
    assert replay.get("format") == REPLAY_FORMAT, f"{path} is not a delivery replay"
    delivery = _replay_setup(replay)
    for recorded in replay["attempts"]:
        method, url = recorded["request"]["method"], recorded["request"]["url"]
        route = re.compile(re.escape(url.split("?")[0]) + r"(\?.*)?$")
        responses.add(method, route, **_answer(recorded))
    outcomes = []
    while not Delivery.objects.get(pk=delivery.pk).is_finished:
        # Fast-forward: the next attempt is due, and any cool-down the provider asked for is over.
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        clear_limit_state()
        services.deliveries_attempt(delivery_ids=[delivery.pk])
        outcomes.append(delivery.attempt_log.order_by("-number").first().outcome)
        assert len(outcomes) <= len(replay["attempts"]), (
            "the engine made more attempts than recorded"
        )
    delivery.refresh_from_db()
    assert outcomes == [a["outcome"] for a in replay["attempts"]]
    assert (delivery.status, delivery.dead_reason) == (
        replay["expected"]["status"],
        replay["expected"]["dead_reason"],
    )


def test_replays_are_shipped():
    assert REPLAYS, "tests/replays/deliveries/ must hold at least one captured delivery"


def test_export_replay_strips_secrets(tmp_path, acme, django_capture_on_commit_callbacks):
    """Export a real delivery and check the file holds no credential value."""
    from django.core.management import call_command

    from credentials.services import credential_create

    token = "c" * 63 + "9"
    credential_create(
        provider="trello",
        purpose="api",
        customer=acme,
        fields={"api_key": "d" * 32, "token": token},
    )
    with responses.RequestsMock() as mock:
        mock.put(
            re.compile(r"https://api\.trello\.com/1/cards/.*"),
            status=429,
            json={"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
        )
        delivery, _ = services.delivery_create(
            api_key=None,
            customer="acme",
            action="trello.move_card",
            input={"card_id": "5abbe4b7ddc1b351ef961414", "list_id": "5abbe4b7ddc1b351ef961415"},
        )
        services.deliveries_attempt(delivery_ids=[delivery.pk])
    call_command("export_replay", str(delivery.pk), "--name", "x", "--output-dir", str(tmp_path))
    exported = (tmp_path / "x.json").read_text()
    assert token not in exported and "d" * 32 not in exported
    assert json.loads(exported)["attempts"][0]["outcome"] == "rate_limited"
