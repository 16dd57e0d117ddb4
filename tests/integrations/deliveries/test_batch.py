"""Batch and scheduled deliveries (DESIGN §11): ``POST /api/v1/deliveries/batch/`` answers one
result per item; ``not_before`` holds a delivery back until then, cancellable meanwhile."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from customers.services import api_key_create
from integrations.deliveries.services import deliveries_relay_due
from integrations.models import Delivery
from integrations.outbox import Outbox
from tests.integrations.deliveries.conftest import CARD

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/deliveries/batch/"
PROBLEM_TYPE = "https://switchyard.dev/problems/"


def _item(n: int = 0, **extra) -> dict:
    return {
        "customer": "acme",
        "action": "trello.move_card",
        "input": {"card_id": CARD, "list_id": f"{n:024x}"},
        **extra,
    }


def _batch(api, items, **extra):
    return api.post(BATCH, {"items": items, **extra}, format="json")


def test_each_item_gets_its_own_result_in_order(api, acme):
    bad_input = _item(1) | {"input": {"card_id": CARD, "list_id": "not-hex"}}
    response = _batch(api, [_item(0), bad_input, _item(2) | {"customer": "nobody"}, _item(3)])
    assert response.status_code == 200, response.content
    first, second, third, fourth = response.json()["results"]
    assert first["status"] == 202 and fourth["status"] == 202
    stored = Delivery.objects.order_by("pk")
    assert [d.pk for d in stored] == [first["id"], fourth["id"]]
    assert second["status"] == 400
    assert second["problem"]["type"] == PROBLEM_TYPE + "validation-error"
    assert "list_id" in second["problem"]["errors"]["input"]
    assert third["problem"]["errors"] == {"customer": ["Unknown customer 'nobody'."]}
    # Left to the relay, customers in turn, rather than a broker task each.
    assert {d.enqueued_until for d in stored} == {None}
    assert all(d.next_attempt_at <= timezone.now() for d in stored)


def test_an_atomic_batch_stores_nothing_unless_every_item_validates(api, acme):
    bad = _item(1) | {"action": "trello.nope"}
    response = _batch(api, [_item(0), bad, _item(2)], atomic=True)
    assert response.status_code == 400
    problem = response.json()
    assert list(problem["errors"]["items"]) == ["1"]
    assert "action" in problem["errors"]["items"]["1"]
    assert not Delivery.objects.exists()
    shape_error = _batch(api, [_item(0), _item(1) | {"not_befor": "tomorrow"}], atomic=True)
    assert shape_error.status_code == 400 and not Delivery.objects.exists()
    response = _batch(api, [_item(0), _item(2)], atomic=True)
    assert [r["status"] for r in response.json()["results"]] == [202, 202]
    assert Delivery.objects.count() == 2


def test_idempotency_keys_in_a_batch_keep_single_post_semantics(api, acme):
    keyed = _item(0, idempotency_key="order-1")
    first = _batch(api, [keyed]).json()["results"][0]
    again = _batch(api, [keyed, keyed]).json()["results"]
    assert again == [{"status": 200, "id": first["id"], "replayed": True}] * 2
    other_body = _batch(api, [_item(9, idempotency_key="order-1")]).json()["results"][0]
    assert other_body["status"] == 422
    # The same key as a single POST's Idempotency-Key header: one key space per API key.
    single = api.post(
        "/api/v1/deliveries/", _item(0), format="json", HTTP_IDEMPOTENCY_KEY="order-1"
    )
    assert (single.status_code, single.json()["id"]) == (200, first["id"])
    assert Delivery.objects.count() == 1


def test_a_key_repeated_within_one_batch(api, acme):
    results = _batch(
        api,
        [
            _item(0, idempotency_key="k"),
            _item(0, idempotency_key="k"),
            _item(5, idempotency_key="k"),
        ],
    ).json()["results"]
    assert results[0]["status"] == 202
    assert results[1] == {"status": 200, "id": results[0]["id"], "replayed": True}
    assert results[2]["status"] == 422
    assert "Item 0" in results[2]["problem"]["detail"]
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [_item(n) for n in range(501)]}, "items"),
        ({"items": ["not an object"]}, "items"),
        ({"items": [_item(0)], "atomc": True}, "atomc"),
        ({}, "items"),
    ],
)
def test_a_malformed_batch_is_a_400_and_stores_nothing(api, acme, body, field):
    response = api.post(BATCH, body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]
    assert not Delivery.objects.exists()


def test_an_unknown_item_key_is_refused_not_ignored(api, acme):
    [result] = _batch(api, [_item(0, not_befor="2030-01-01T00:00:00Z")]).json()["results"]
    assert result["status"] == 400
    assert "not_befor" in result["problem"]["errors"]


def test_a_limited_key_gets_another_customers_items_refused(acme, globex):
    _, raw = api_key_create(name="acme-app", customers=[acme])
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    own, theirs = _batch(app, [_item(0), _item(1) | {"customer": "globex"}]).json()["results"]
    assert own["status"] == 202
    assert theirs["status"] == 400
    assert theirs["problem"]["errors"] == {"customer": ["Unknown customer 'globex'."]}
    assert list(Delivery.objects.values_list("customer__slug", flat=True)) == ["acme"]


def test_a_scheduled_delivery_waits_and_can_be_cancelled(api, acme, monkeypatch):
    sent = []
    monkeypatch.setattr(Outbox, "enqueue", lambda _self, ids: sent.extend(ids))
    when = timezone.now() + timedelta(hours=1)
    response = api.post("/api/v1/deliveries/", _item(0, not_before=when.isoformat()), format="json")
    assert response.status_code == 202
    delivery = Delivery.objects.get(pk=response.json()["id"])
    assert delivery.next_attempt_at == when and delivery.enqueued_until is None
    deliveries_relay_due()
    assert sent == []  # not due: the relay leaves it
    cancelled = api.post(f"/api/v1/deliveries/{delivery.pk}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    Delivery.objects.filter(pk=delivery.pk).update(status="pending", next_attempt_at=when)
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: when + timedelta(seconds=1))
        deliveries_relay_due()
    assert sent == [delivery.pk]


def test_a_past_not_before_is_due_now_and_a_far_one_refused(api, acme):
    past = api.post(
        "/api/v1/deliveries/",
        _item(0, not_before="2020-01-01T00:00:00Z"),
        format="json",
    )
    assert past.status_code == 202
    assert Delivery.objects.get().next_attempt_at <= timezone.now()
    far = (timezone.now() + timedelta(days=91)).isoformat()
    refused = api.post("/api/v1/deliveries/", _item(1, not_before=far), format="json")
    assert refused.status_code == 400 and "not_before" in refused.json()["errors"]


def test_not_before_is_part_of_the_idempotent_body(api, acme):
    at = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    same_instant = at.astimezone(timezone.get_fixed_timezone(120)).isoformat()

    def post(not_before):
        return api.post(
            "/api/v1/deliveries/",
            _item(0, not_before=not_before),
            format="json",
            HTTP_IDEMPOTENCY_KEY="scheduled",
        )

    first = post(at.isoformat())
    assert post(same_instant).status_code == 200  # the same time, written another way
    assert post((at + timedelta(seconds=1)).isoformat()).status_code == 422
    assert Delivery.objects.get().pk == first.json()["id"]


def test_batch_items_may_be_scheduled(api, acme):
    when = timezone.now() + timedelta(minutes=5)
    results = _batch(api, [_item(0, not_before=when.isoformat()), _item(1)]).json()["results"]
    scheduled, now = (Delivery.objects.get(pk=r["id"]) for r in results)
    assert scheduled.next_attempt_at == when
    assert now.next_attempt_at <= timezone.now()
