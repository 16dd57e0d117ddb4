"""``manage.py export_replay --event``: an inbound event becomes a fixture (secrets stripped)
that is fed through the real receiver again."""

import json

import pytest
from django.core.management import call_command

from tests.webhooks.conftest import SECRETS, SERVER, signed_headers
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db


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
    endpoint = make_endpoint("shopify", customer=globex)
    body = replay["body"].encode()
    headers = {**replay["headers"], **signed_headers("shopify", body, SERVER + endpoint.path)}
    headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "cookie")}
    response = post_webhook(endpoint, body, headers)
    assert response.status_code == 202
    assert InboundEvent.objects.get(pk=response.json()["id"]).status == "processed"


def test_export_needs_exactly_one_id():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("export_replay")
    with pytest.raises(CommandError, match="No inbound event"):
        call_command("export_replay", event=999)
