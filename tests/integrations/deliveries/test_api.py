import pytest
import responses
from django.utils import timezone
from rest_framework.test import APIClient

from customers.services import api_key_create
from integrations.models import Delivery
from tests.integrations.deliveries.conftest import CARD, CARD_URL, LIST

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
CARD_JSON = {"id": CARD, "idList": LIST, "idBoard": "5abbe4b7ddc1b351ef961416"}


def post(api, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/v1/deliveries/", body, format="json", **headers)


def test_post_answers_202_with_the_delivery(api, acme, move_card):
    response = post(api, move_card)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert (body["customer"], body["action"]) == ("acme", "trello.move_card")
    assert (body["provider"], body["operation"]) == ("trello", "move_card")
    assert Delivery.objects.filter(pk=body["id"]).exists()


@responses.activate
def test_delivery_detail_includes_attempts(
    api, trello_credential, move_card, django_capture_on_commit_callbacks
):
    responses.put(CARD_URL, json=CARD_JSON)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_id = post(api, move_card).json()["id"]
    detail = api.get(f"/api/v1/deliveries/{delivery_id}/").json()
    assert detail["status"] == "succeeded"
    [attempt] = detail["attempts"]
    assert attempt["number"] == 1
    assert attempt["outcome"] == "success"
    assert attempt["response_status"] == 200
    assert attempt["credential_version"] == 1
    assert attempt["duration_ms"] >= 0
    assert attempt["request"]["method"] == "PUT"


def test_idempotent_replay_and_mismatch(api, acme, move_card):
    first = post(api, move_card, key="abc")
    replay = post(api, move_card, key="abc")
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    changed = post(api, {**move_card, "input": {"card_id": CARD, "list_id": "e" * 24}}, key="abc")
    assert changed.status_code == 422
    assert changed["Content-Type"] == PROBLEM
    assert "Idempotency-Key" in changed.json()["errors"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": "nope"}, "action"),
        ({"action": "trello.nope"}, "action"),
        ({"customer": "nobody"}, "customer"),
        ({"input": {"card_id": CARD}}, "input"),
        ({"input": "not an object"}, "input"),
        ({"customer": None}, "customer"),
    ],
)
def test_bad_input_is_a_problem_and_stores_nothing(api, acme, move_card, change, field):
    response = post(api, {**move_card, **change})
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert field in response.json()["errors"]
    assert not Delivery.objects.exists()


def test_overlong_idempotency_key_is_400(api, acme, move_card):
    response = post(api, move_card, key="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert not Delivery.objects.exists()


def test_inactive_customer_is_400(api, acme, move_card):
    acme.active = False
    acme.save()
    response = post(api, move_card)
    assert response.status_code == 400
    assert "inactive" in response.json()["detail"]


def test_oversized_body_is_413(api, acme, move_card, settings):
    settings.SWITCHYARD_MAX_BODY_BYTES = 2048
    response = post(
        api, {**move_card, "input": {"card_id": CARD, "list_id": LIST, "x": "y" * 4000}}
    )
    assert response.status_code == 413
    assert not Delivery.objects.exists()


def test_list_filters_and_cursor_pagination(api, acme, globex, move_card):
    for n in range(5):
        post(api, {**move_card, "input": {"card_id": CARD, "list_id": f"{n:024x}"}})
    Delivery.objects.filter(pk=Delivery.objects.order_by("pk").first().pk).update(status="dead")
    page = api.get("/api/v1/deliveries/?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
    rest = second.get(page["next"]).json()
    assert len(rest["results"]) == 2
    assert not {d["id"] for d in page["results"]} & {d["id"] for d in rest["results"]}
    assert len(api.get("/api/v1/deliveries/?status=dead").json()["results"]) == 1
    assert len(api.get("/api/v1/deliveries/?customer=globex").json()["results"]) == 0
    assert len(api.get("/api/v1/deliveries/?provider=trello").json()["results"]) == 5
    since = timezone.now().isoformat().replace("+00:00", "Z")
    assert api.get("/api/v1/deliveries/", {"created_after": since}).json()["results"] == []


@pytest.mark.parametrize("query", ["status=exploded", "created_after=yesterday"])
def test_bad_filters_are_400(api, acme, query):
    response = api.get(f"/api/v1/deliveries/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM


def test_restricted_key_sees_only_its_customers_deliveries(api, acme, globex, move_card):
    delivery_id = post(api, move_card).json()["id"]
    _, raw = api_key_create(name="globex-only", customers=[globex])
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert other.get(f"/api/v1/deliveries/{delivery_id}/").status_code == 404
    assert other.post(f"/api/v1/deliveries/{delivery_id}/cancel/").status_code == 404
    assert other.get("/api/v1/deliveries/").json()["results"] == []


def test_cancel_and_retry_endpoints(api, acme, move_card):
    delivery_id = post(api, move_card).json()["id"]
    conflict = api.post(f"/api/v1/deliveries/{delivery_id}/retry/")
    assert conflict.status_code == 409
    assert conflict["Content-Type"] == PROBLEM
    cancelled = api.post(f"/api/v1/deliveries/{delivery_id}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/deliveries/{delivery_id}/cancel/").status_code == 409


@responses.activate
def test_retry_a_dead_letter_through_the_api(
    api, trello_credential, move_card, django_capture_on_commit_callbacks
):
    responses.put(CARD_URL, json=CARD_JSON)
    delivery_id = post(api, move_card).json()["id"]
    Delivery.objects.filter(pk=delivery_id).update(
        status="dead", attempts=1, dead_reason="non_retryable"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/deliveries/{delivery_id}/retry/")
    assert response.status_code == 202
    assert Delivery.objects.get(pk=delivery_id).status == "succeeded"


def test_dead_letter_list_and_bulk_retry(api, acme, globex, move_card):
    ids = [
        post(api, {**move_card, "input": {"card_id": CARD, "list_id": f"{n:024x}"}}).json()["id"]
        for n in range(4)
    ]
    Delivery.objects.filter(pk__in=ids[:3]).update(status="dead", dead_reason="attempts_exhausted")
    letters = api.get("/api/v1/dead-letters/").json()["results"]
    assert sorted(d["id"] for d in letters) == sorted(ids[:3])
    assert all(d["status"] == "dead" for d in letters)
    by_ids = api.post("/api/v1/dead-letters/retry/", {"ids": [ids[0], ids[3]]}, format="json")
    assert by_ids.status_code == 202
    assert by_ids.json() == {"retried": 1}
    by_filter = api.post(
        "/api/v1/dead-letters/retry/", {"filter": {"provider": "trello"}}, format="json"
    )
    assert by_filter.json() == {"retried": 2}
    assert not Delivery.objects.filter(status="dead").exists()


@pytest.mark.parametrize(
    "body", [{}, {"ids": [1], "filter": {}}, {"ids": "all"}, {"filter": {"status": "pending"}}]
)
def test_bulk_retry_needs_ids_or_a_filter(api, body):
    response = api.post("/api/v1/dead-letters/retry/", body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
