import base64
import hashlib
import hmac
import json

import pytest
import requests
import responses

from integrations.providers.types import SignatureInvalid
from integrations.registry import get_provider
from tests.integrations.providers.helpers import fixture_bytes

KEY, TOKEN = "a" * 32, "b" * 64
CREDS = {"api_key": KEY, "token": TOKEN}
CARD, LIST, BOARD = (
    "5abbe4b7ddc1b351ef961411",
    "5abbe4b7ddc1b351ef961412",
    "5abbe4b7ddc1b351ef961413",
)
CARD_URL = f"https://api.trello.com/1/cards/{CARD}"
MOVE = {"card_id": CARD, "list_id": LIST}


@responses.activate
def test_move_card_puts_id_list_with_key_and_token_in_query(execute):
    responses.put(CARD_URL, json={"id": CARD, "idList": LIST, "idBoard": BOARD, "name": "x"})
    outcome = execute("trello.move_card", {**MOVE, "pos": "top"}, credentials=CREDS)
    assert outcome.outcome == "success"
    assert outcome.result == {"card_id": CARD, "list_id": LIST, "board_id": BOARD}
    sent = responses.calls[0].request
    assert json.loads(sent.body) == {"idList": LIST, "pos": "top"}
    assert f"key={KEY}" in sent.url and f"token={TOKEN}" in sent.url
    # The stored record never shows them.
    assert KEY not in json.dumps(outcome.as_dict()) and TOKEN not in json.dumps(outcome.as_dict())
    assert "key=****" in outcome.request["url"]


@responses.activate
def test_header_auth_mode_sends_oauth_header(execute):
    responses.put(CARD_URL, json={"id": CARD, "idList": LIST})
    outcome = execute("trello.move_card", MOVE, credentials=CREDS, config={"auth_mode": "header"})
    sent = responses.calls[0].request
    assert (
        sent.headers["Authorization"] == f'OAuth oauth_consumer_key="{KEY}", oauth_token="{TOKEN}"'
    )
    assert "key=" not in sent.url
    assert outcome.request["headers"]["Authorization"] == "****"


@responses.activate
def test_create_webhook(execute):
    responses.post(
        "https://api.trello.com/1/webhooks/",
        body=b'{"id":"5abbe4b7ddc1b351ef961414","description":"Board Webhook",'
        b'"idModel":"5abbe4b7ddc1b351ef961415","callbackURL":"https://mywebhookurl.com/?type=board",'
        b'"active":true,"consecutiveFailures":0,"firstConsecutiveFailDate":null}',
    )
    outcome = execute(
        "trello.create_webhook",
        {"callback_url": "https://mywebhookurl.com/?type=board", "id_model": BOARD},
        credentials=CREDS,
    )
    assert outcome.result == {
        "webhook_id": "5abbe4b7ddc1b351ef961414",
        "id_model": "5abbe4b7ddc1b351ef961415",
        "active": True,
    }
    assert json.loads(responses.calls[0].request.body) == {
        "callbackURL": "https://mywebhookurl.com/?type=board",
        "idModel": BOARD,
    }


@pytest.mark.parametrize(
    ("status", "body", "headers", "outcome", "retry_after", "error_part"),
    [
        (
            429,
            {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
            {},
            "rate_limited",
            10.0,
            "API_TOKEN_LIMIT_EXCEEDED",
        ),
        (
            429,
            {"error": "API_KEY_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
            {},
            "rate_limited",
            10.0,
            "API_KEY_LIMIT_EXCEEDED",
        ),
        (401, "invalid key", {}, "auth_failed", None, "invalid key"),
        (401, "invalid token", {}, "auth_failed", None, "invalid token"),
        (400, "invalid id", {}, "terminal", None, "invalid id"),
        (
            400,
            {"message": "Invalid objectId", "error": "ERROR"},
            {},
            "terminal",
            None,
            "Invalid objectId",
        ),
        (404, "The requested resource was not found.", {}, "terminal", None, "not found"),
        (
            500,
            "<html><body><h1>500 Internal Server Error</h1></body></html>",
            {},
            "retryable",
            None,
            "500",
        ),
        (503, "", {"Retry-After": "7"}, "retryable", 7.0, "empty body"),
        (301, "", {"Location": "https://elsewhere.example/"}, "terminal", None, "redirect"),
    ],
)
@responses.activate
def test_error_classification(execute, status, body, headers, outcome, retry_after, error_part):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.put(CARD_URL, status=status, headers=headers, **kwargs)
    result = execute("trello.move_card", MOVE, credentials=CREDS)
    assert (result.outcome, result.retry_after, result.status) == (outcome, retry_after, status)
    assert error_part in result.error


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Service Unavailable</body></html>", b"", b"[]", b'{"unexpected": 1}', b"{"],
)
@responses.activate
def test_malformed_success_is_classified_not_raised(execute, body):
    responses.put(CARD_URL, body=body, status=200)
    result = execute("trello.move_card", MOVE, credentials=CREDS)
    assert (result.outcome, result.error_class) == ("terminal", "malformed_response")


@responses.activate
def test_configured_delay_overrides_default_for_bare_429(execute):
    responses.put(CARD_URL, status=429, json={"error": "API_KEY_LIMIT_EXCEEDED", "message": "x"})
    result = execute(
        "trello.move_card", MOVE, credentials=CREDS, config={"rate_limited_delay_seconds": 3}
    )
    assert result.retry_after == 3.0


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (requests.ConnectTimeout("connect timed out"), "connect_timeout"),
        (requests.ReadTimeout("read timed out"), "read_timeout"),
        (
            requests.ConnectionError(f"Max retries exceeded with url: /1/cards/x?key={KEY}"),
            "connection_error",
        ),
    ],
)
@responses.activate
def test_network_failures_are_retryable_and_masked(execute, exc, error_class):
    responses.put(CARD_URL, body=exc)
    result = execute("trello.move_card", MOVE, credentials=CREDS)
    assert (result.outcome, result.error_class, result.status) == ("retryable", error_class, None)
    assert KEY not in result.error


def test_missing_credential_field_is_terminal_without_sending(execute):
    with responses.RequestsMock() as mock:
        result = execute("trello.move_card", MOVE, credentials={"api_key": KEY})
        assert not mock.calls
    assert (result.outcome, result.error_class) == ("terminal", "credential_incomplete")


# -- inbound ------------------------------------------------------------------------------------

SECRET = "trello-app-secret"
CALLBACK = "https://switchyard.example/webhooks/trello/7/"


def _sign(body: bytes, secret: str = SECRET, url: str = CALLBACK) -> str:
    digest = hmac.new(secret.encode(), body + url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_documented_worked_example():
    headers = {"X-Trello-Webhook": "FwPAcuGe9EP/+SbXFWjnEVTa0zw="}
    trello = get_provider("trello")
    assert (
        trello.verify(
            b'{"hello":"world"}', headers, [(1, "secret")], "https://example.com/webhooks"
        )
        == 1
    )


def test_verify_fixture_with_rotation_grace():
    body = fixture_bytes("trello", "updateCard__moved")
    trello = get_provider("trello")
    headers = {"x-trello-webhook": _sign(body, "old-secret")}
    assert trello.verify(body, headers, [(2, SECRET), (1, "old-secret")], CALLBACK) == 1
    assert (
        trello.verify(body, {"X-Trello-Webhook": _sign(body)}, [(2, SECRET), (1, "old")], CALLBACK)
        == 2
    )


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda body, headers, url: (body.replace(b"Webhooks", b"Webhookz"), headers, url),
            "No signature",
        ),
        (
            lambda body, headers, url: (body, {"X-Trello-Webhook": _sign(body, "wrong")}, url),
            "No signature",
        ),
        (lambda body, headers, url: (body, headers, url + "?x=1"), "No signature"),
        (lambda body, headers, url: (body, {}, url), "Missing X-Trello-Webhook"),
    ],
    ids=["tampered-body", "wrong-secret", "other-callback-url", "no-header"],
)
def test_verify_rejects(mutate, reason):
    body = fixture_bytes("trello", "updateCard__moved")
    body, headers, url = mutate(body, {"X-Trello-Webhook": _sign(body)}, CALLBACK)
    with pytest.raises(SignatureInvalid, match=reason):
        get_provider("trello").verify(body, headers, [(1, SECRET)], url)


def test_normalise_card_moved():
    body = fixture_bytes("trello", "updateCard__moved")
    trello = get_provider("trello")
    event = trello.normalise(body, {})
    assert event.type == "trello.card.moved"
    assert event.occurred_at == "2013-07-31T16:58:51.949Z"
    assert event.data["to_list"] == {"id": "51a79e72dbb7e23c7c003700", "name": "Done"}
    assert event.data["from_list"] == {"id": "51a79e72dbb7e23c7c003701", "name": "Review"}
    assert trello.event_id(body, {}) == "51f9424bcd6e040f3c002412"


def test_ignored_event_type_normalises_to_none():
    body = fixture_bytes("trello", "voteOnCard__basic")
    assert get_provider("trello").normalise(body, {}) is None
    assert get_provider("trello").event_id(body, {}) == "51f9424bcd6e040f3c002412"
