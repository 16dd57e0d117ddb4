"""Miro board changes by polling, against the fake provider's board (cursor pages of 10): a
baseline, then creations, updates and deletions as events, across pages, across a restart
(in the middle of a scan, and after a page's write failed) and across a deletion, each found
exactly once."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from credentials.services import credential_create
from integrations.outbox import broker as outbox_broker
from integrations.services import integration_create
from webhooks.models import InboundEvent, PolledItem, WebhookEndpoint
from webhooks.services import endpoint_source_create, inbound_events_process
from webhooks.sources import miro_poll
from webhooks.sources.miro_poll import miro_board_poll, miro_polls_start_due

pytestmark = pytest.mark.django_db

BOARD = "uXjVTestBoard="
AUTH = {"Authorization": "Bearer fake-token"}


class Board:
    """The fake provider's board, changed as a Miro user would change it."""

    def __init__(self, url: str):
        self.base = f"{url}/miro/v2/boards/{BOARD}"

    def create(self, content: str) -> dict:
        response = requests.post(
            f"{self.base}/sticky_notes",
            json={"data": {"content": content}},
            headers=AUTH,
            timeout=5,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def move(self, item_id: str, x: float) -> dict:
        response = requests.patch(
            f"{self.base}/items/{item_id}",
            json={"parent": {"id": None}, "position": {"x": x, "y": 0}},
            headers=AUTH,
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def delete(self, item_id: str) -> None:
        response = requests.delete(f"{self.base}/items/{item_id}", headers=AUTH, timeout=5)
        assert response.status_code == 204, response.text


@pytest.fixture
def board(fake_provider):
    return Board(fake_provider.url)


@pytest.fixture
def endpoint(acme, fake_provider):
    def make(**config):
        integration_create(
            customer=acme,
            provider_key="miro",
            config={"base_url": f"{fake_provider.url}/miro", **config},
        )
        credential_create(
            provider="miro", purpose="api", customer=acme, fields={"access_token": "fake-token"}
        )
        return endpoint_source_create(
            customer=acme,
            provider="miro",
            source="miro_poll",
            source_config={"board_id": BOARD, "interval_seconds": 1, "page_size": 10},
        )

    return make


def _changes(endpoint) -> list[tuple[str, str]]:
    """(change, item id) of every event stored, in order."""
    found = []
    for event in InboundEvent.objects.filter(endpoint=endpoint).order_by("pk"):
        body = bytes(event.body).decode()
        change = next(c for c in ("created", "updated", "deleted") if f'"change":"{c}"' in body)
        found.append((change, event.external_id.split("@", 1)[0]))
    return found


def _listings(fake_provider) -> list[dict]:
    return [
        r for r in fake_provider.journal(f"/miro/v2/boards/{BOARD}/items") if r["method"] == "GET"
    ]


def _poll(endpoint, **kwargs):
    return miro_board_poll(endpoint_id=endpoint.pk, **kwargs)


def test_the_first_scan_is_a_baseline_over_every_page(endpoint, board, fake_provider):
    for n in range(25):
        board.create(f"note {n}")
    ep = endpoint()
    result = _poll(ep)
    assert (result.pages, result.events, result.complete, result.error) == (3, 0, True, "")
    assert PolledItem.objects.filter(endpoint=ep).count() == 25
    pages = _listings(fake_provider)
    assert [bool(p["query"].get("cursor")) for p in pages] == [False, True, True]
    assert {p["query"]["limit"] for p in pages} == {"10"}
    ep.refresh_from_db()
    assert ep.source_state["baseline_done"] and ep.source_state["cursor"] is None
    assert ep.source_state["modified_at_high_water"]
    assert not InboundEvent.objects.exists()


def test_changes_on_every_page_become_events_once(endpoint, board):
    items = [board.create(f"note {n}") for n in range(25)]
    ep = endpoint()
    _poll(ep)
    created = board.create("new note")
    board.move(items[1]["id"], 10)  # page 1
    board.move(items[24]["id"], 20)  # page 3
    board.delete(items[12]["id"])  # page 2
    result = _poll(ep)
    assert (result.complete, result.events) == (True, 4)
    assert sorted(_changes(ep)) == sorted(
        [
            ("created", created["id"]),
            ("updated", items[1]["id"]),
            ("updated", items[24]["id"]),
            ("deleted", items[12]["id"]),
        ]
    )
    assert _poll(ep).events == 0  # nothing changed since: nothing new
    board.move(items[1]["id"], 30)  # the same item again: a new version, a new event
    assert _poll(ep).events == 1
    assert _changes(ep)[-1] == ("updated", items[1]["id"])


def test_events_are_processed_into_miro_item_envelopes(endpoint, board):
    item = board.create("note")
    ep = endpoint()
    _poll(ep)
    board.move(item["id"], 5)
    board.delete(item["id"])
    _poll(ep)
    events = InboundEvent.objects.filter(endpoint=ep).order_by("pk")
    statuses = inbound_events_process(event_ids=[e.pk for e in events])
    assert set(statuses.values()) == {"processed"}
    envelopes = [e.envelope for e in events.all()]
    assert [e["type"] for e in envelopes] == ["miro.item.deleted"]
    # The move and the deletion fell in one poll: only the deletion is seen (the item is gone).
    assert envelopes[0]["data"]["item_id"] == item["id"]
    assert envelopes[0]["provider"] == "miro"


def test_a_restart_mid_scan_resumes_from_the_saved_cursor(endpoint, board, fake_provider):
    items = [board.create(f"note {n}") for n in range(25)]
    ep = endpoint()
    _poll(ep)
    board.move(items[2]["id"], 1)  # page 1
    board.move(items[22]["id"], 1)  # page 3
    first = _poll(ep, max_pages=1)  # the worker stops after one page
    assert (first.pages, first.events, first.complete) == (1, 1, False)
    board.move(items[3]["id"], 1)  # page 1 again, behind the cursor: next scan
    ep = WebhookEndpoint.objects.get(pk=ep.pk)  # a new process: everything from the database
    rest = _poll(ep)
    assert (rest.pages, rest.events, rest.complete) == (2, 1, True)
    assert _poll(ep).events == 1  # the change made behind the cursor, not lost
    assert sorted(_changes(ep)) == sorted(
        [("updated", items[2]["id"]), ("updated", items[22]["id"]), ("updated", items[3]["id"])]
    )


def test_a_page_whose_write_failed_is_fetched_and_applied_again(endpoint, board, monkeypatch):
    items = [board.create(f"note {n}") for n in range(25)]
    ep = endpoint()
    _poll(ep)
    board.move(items[11]["id"], 1)  # page 2
    board.move(items[21]["id"], 1)  # page 3
    real_mark, calls = miro_poll._high_water, []

    def fails_on_page_two(current, items):
        calls.append(items)
        if len(calls) == 2:  # page 2's event is stored by now, inside the page's transaction
            raise RuntimeError("database gone")
        return real_mark(current, items)

    monkeypatch.setattr(miro_poll, "_high_water", fails_on_page_two)
    with pytest.raises(RuntimeError):
        _poll(ep)
    assert not InboundEvent.objects.filter(endpoint=ep).exists()
    monkeypatch.undo()
    ep = WebhookEndpoint.objects.get(pk=ep.pk)
    assert _poll(ep).complete
    assert sorted(_changes(ep)) == sorted(
        [("updated", items[11]["id"]), ("updated", items[21]["id"])]
    )


def test_a_deletion_is_found_by_a_complete_scan_only_and_once(endpoint, board):
    items = [board.create(f"note {n}") for n in range(25)]
    ep = endpoint()
    _poll(ep)
    board.delete(items[0]["id"])
    board.delete(items[24]["id"])
    partial = _poll(ep, max_pages=1)
    assert (partial.events, partial.complete) == (0, False)  # the scan is not complete yet
    assert _poll(ep).events == 2
    assert sorted(_changes(ep)) == sorted(
        [("deleted", items[0]["id"]), ("deleted", items[24]["id"])]
    )
    assert not PolledItem.objects.filter(endpoint=ep, item_id=items[0]["id"]).exists()
    assert _poll(ep).events == 0


def test_the_rate_limit_defers_the_next_page_without_a_request(endpoint, board, fake_provider):
    items = [board.create(f"note {n}") for n in range(25)]
    ep = endpoint(rate_limit={"rate": 1, "per_seconds": 60})
    result = _poll(ep)
    assert (result.pages, result.complete) == (1, False)
    assert result.error.startswith("deferred: rate limit")
    assert len(_listings(fake_provider)) == 1
    ep.refresh_from_db()
    assert ep.source_due_at > timezone.now() + timedelta(seconds=30)
    assert ep.source_state["cursor"]  # where the next poll goes on
    assert ep.source_error == ""  # a deferral is no failure
    assert len(items) == 25


def test_a_429_from_miro_reschedules_the_poll(endpoint, board, fake_provider):
    board.create("note")
    ep = endpoint()
    fake_provider.fault(path_prefix="/miro/", status=429, count=1, retry_after=7)
    result = _poll(ep)
    assert result.error.startswith("rate_limited")
    ep.refresh_from_db()
    assert ep.source_due_at > timezone.now() + timedelta(seconds=5)
    assert ep.source_lease_until is None


def test_the_dispatcher_step_queues_each_due_board_once(endpoint, monkeypatch):
    ep = endpoint()
    queued = []
    monkeypatch.setattr(
        outbox_broker, "async_task", lambda *args, q_options: queued.append((args, q_options))
    )
    assert miro_polls_start_due() == 1
    assert miro_polls_start_due() == 0  # leased while its poll runs
    [(args, options)] = queued
    assert args == ("webhooks.tasks.miro_board_poll", ep.pk)
    assert options["broker"] is outbox_broker.shared_broker()  # no client made per poll


def test_polled_endpoints_take_no_webhooks(endpoint, client):
    ep = endpoint()
    response = client.post(ep.path, b"{}", content_type="application/json")
    assert response.status_code == 404


def test_polling_goes_through_the_egress_policy(endpoint, board, fake_provider, settings):
    board.create("note")
    # Named so no earlier test's pooled connection serves it: egress checks a connection
    # when it opens one.
    ep = endpoint(base_url=fake_provider.url.replace("127.0.0.1", "localhost") + "/miro")
    settings.SWITCHYARD_EGRESS_ALLOW = ""  # the fake provider is on loopback: now refused
    result = _poll(ep)
    assert result.error.startswith("egress_refused")
    assert _listings(fake_provider) == []
    ep.refresh_from_db()
    assert "non-public" in ep.source_error and ep.source_lease_until is None
    assert "127.0.0.1" not in ep.source_error  # shown by the API: the address stays in the log
