"""The demo's Miro board (what `make run` shows): seeded polling of globex's board at the fake
provider, a sticky note added there, and the event it becomes, normalised and fanned out."""

import pytest
import requests

from devtools.demo import DEMO_BOARD_POLL, demo_integrations_seed
from integrations.models import Delivery
from webhooks.models import EndpointSource, InboundEvent, WebhookEndpoint
from webhooks.services import inbound_events_process, subscription_create
from webhooks.sources.miro_poll import miro_board_poll

pytestmark = pytest.mark.django_db


def test_a_note_added_to_the_demo_board_arrives_as_an_event(acme, globex, fake_provider):
    demo_integrations_seed(fake_url=fake_provider.url)
    demo_integrations_seed(fake_url=fake_provider.url)  # idempotent
    endpoint = WebhookEndpoint.objects.get(source=EndpointSource.MIRO_POLL)
    assert endpoint.customer == globex
    assert miro_board_poll(endpoint_id=endpoint.pk).complete  # the baseline
    subscription, _ = subscription_create(
        customer=globex, url="http://127.0.0.1:9/hook", event_types=["miro.*"], allow_private=True
    )

    board = DEMO_BOARD_POLL[1]["board_id"]
    note = requests.post(
        f"{fake_provider.url}/miro/v2/boards/{board}/sticky_notes",
        json={"data": {"content": "Hello from the demo"}},
        headers={"Authorization": "Bearer demo"},
        timeout=5,
    ).json()
    assert miro_board_poll(endpoint_id=endpoint.pk).events == 1
    event = InboundEvent.objects.get(endpoint=endpoint)
    inbound_events_process(event_ids=[event.pk])
    event.refresh_from_db()
    assert event.envelope["type"] == "miro.item.created"
    assert event.envelope["customer"] == "globex"
    assert event.envelope["data"]["item_id"] == note["id"]
    assert event.envelope["data"]["item"]["data"]["content"] == "Hello from the demo"
    assert subscription.pk  # fanned out to it like any webhook's event
    assert Delivery.objects.filter(customer=globex, action="standard_webhooks.send").count() == 1
