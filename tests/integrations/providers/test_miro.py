import json
import time

import pytest
import responses

BOARD, ITEM, FRAME = "uXjVOD6LSME=", "3458764517517819000", "3458764517517819999"
URL = f"https://api.miro.com/v2/boards/{BOARD}/items/{ITEM}"
CREDS = {"access_token": "miro-access-token-123"}
MOVE = {"board_id": BOARD, "item_id": ITEM, "parent_id": FRAME}
TOO_MANY = {
    "status": 429,
    "code": "tooManyRequests",
    "message": "Request rate limit exceed",
    "context": None,
    "type": "error",
}


@responses.activate
def test_move_item_patches_parent_with_bearer_token(execute):
    responses.patch(URL, json={"id": ITEM, "type": "sticky_note", "parent": {"id": FRAME}})
    outcome = execute(
        "miro.move_item", {**MOVE, "position": {"x": 100, "y": 100}}, credentials=CREDS
    )
    assert outcome.outcome == "success"
    assert outcome.result == {"item_id": ITEM, "parent_id": FRAME, "board_id": BOARD}
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer miro-access-token-123"
    assert json.loads(sent.body) == {"parent": {"id": FRAME}, "position": {"x": 100.0, "y": 100.0}}
    assert outcome.request["headers"]["Authorization"] == "****"


@responses.activate
def test_429_waits_until_rate_limit_reset(execute):
    reset = int(time.time()) + 42
    headers = {
        "X-RateLimit-Limit": "100000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset),
    }
    responses.patch(URL, status=429, json=TOO_MANY, headers=headers)
    outcome = execute("miro.move_item", MOVE, credentials=CREDS)
    assert outcome.outcome == "rate_limited"
    assert 40 <= outcome.retry_after <= 42
    assert "tooManyRequests: Request rate limit exceed" in outcome.error


@responses.activate
def test_429_prefers_retry_after_and_defaults_to_a_minute(execute):
    responses.patch(URL, status=429, json=TOO_MANY, headers={"Retry-After": "5"})
    responses.patch(URL, status=429, json=TOO_MANY)
    assert execute("miro.move_item", MOVE, credentials=CREDS).retry_after == 5.0
    assert execute("miro.move_item", MOVE, credentials=CREDS).retry_after == 60.0


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(401, "auth_failed"), (404, "terminal"), (400, "terminal"), (502, "retryable")],
)
@responses.activate
def test_basic_error_shapes(execute, status, outcome):
    responses.patch(
        URL,
        status=status,
        json={"status": status, "code": "someCode", "message": "no", "type": "error"},
    )
    result = execute("miro.move_item", MOVE, credentials=CREDS)
    assert (result.outcome, result.status) == (outcome, status)
    assert "someCode: no" in result.error


def test_stages_require_board_id(acme):
    from django.core.exceptions import ValidationError

    from integrations.services import integration_create

    with pytest.raises(ValidationError, match="board_id"):
        integration_create(customer=acme, provider_key="miro", config={"stages": {"done": FRAME}})
