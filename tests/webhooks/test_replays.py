"""``manage.py export_replay --event``: an inbound event becomes a fixture (secrets stripped)
that is fed through the real receiver again. Every file in tests/replays/inbound/ is such a
capture; each is received again, signed with a test secret, and must end as it was recorded."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.webhooks.conftest import SECRETS, SERVER, signed_headers
from webhooks.models import InboundEvent
from webhooks.replays import EVENT_REPLAY_FORMAT

pytestmark = pytest.mark.django_db

REPLAYS = sorted((Path(__file__).resolve().parents[1] / "replays" / "inbound").glob("*.json"))


def _receive_again(replay: dict, endpoint, post_webhook):
    """The captured bytes, signed for ``endpoint`` with its test secret, through the receiver."""
    body = replay["body"].encode()
    headers = {
        **replay["headers"],
        **signed_headers(replay["provider"], body, SERVER + endpoint.path),
    }
    headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "cookie")}
    return post_webhook(endpoint, body, headers)


@pytest.mark.parametrize("path", REPLAYS, ids=[p.stem for p in REPLAYS])
def test_replay(path, make_endpoint, post_webhook):
    replay = json.loads(path.read_text())
    assert replay.get("format") == EVENT_REPLAY_FORMAT, f"{path} is not an inbound event replay"
    recorded = replay["event"]
    response = _receive_again(recorded, make_endpoint(recorded["provider"]), post_webhook)
    assert response.status_code == 202
    event = InboundEvent.objects.get(pk=response.json()["id"])
    assert (event.status, event.type) == (recorded["status"], recorded["type"])


def test_replays_are_shipped():
    assert REPLAYS, "tests/replays/inbound/ must hold at least one captured event"


def test_an_event_is_exported_among_the_inbound_replays(
    settings, tmp_path, make_endpoint, post_webhook
):
    """Not among the delivery replays, whose test would fail on it."""
    post_webhook(make_endpoint("shopify"))
    settings.BASE_DIR = tmp_path
    call_command("export_replay", event=InboundEvent.objects.get().pk, name="captured")
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*.json")]
    assert written == [Path("tests/replays/inbound/captured.json")]


def test_export_event_then_replay_it_through_the_receiver(
    tmp_path, make_endpoint, post_webhook, globex, capsys
):
    post_webhook(make_endpoint("shopify"))
    event = InboundEvent.objects.get()
    call_command("export_replay", event=event.pk, name="shopify-tshirt", output_dir=str(tmp_path))
    exported = (tmp_path / "shopify-tshirt.json").read_text()
    assert SECRETS["shopify"] not in exported
    assert "X-Shopify-Hmac-Sha256" not in exported
    replay = json.loads(exported)["event"]
    assert replay["external_id"] == event.external_id

    # Another customer's endpoint receives the captured bytes, signed with its own test secret.
    response = _receive_again(replay, make_endpoint("shopify", customer=globex), post_webhook)
    assert response.status_code == 202
    assert InboundEvent.objects.get(pk=response.json()["id"]).status == "processed"


def test_export_needs_exactly_one_id():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("export_replay")
    with pytest.raises(CommandError, match="No inbound event"):
        call_command("export_replay", event=999)
