"""The client against a scripted transport: what it sends, what it retries, what it never
repeats, how it pages, and which webhooks it accepts."""

import base64
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from switchyard_client import (
    ApiError,
    Client,
    RetryPolicy,
    WebhookVerificationError,
    verify_webhook,
)

BASE = "http://switchyard.test"
PROBLEM = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "input: bad"}


class Script:
    """Answers requests in order and records them."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_for(script: Script, **kwargs) -> tuple[Client, list[float]]:
    slept: list[float] = []
    client = Client(
        BASE,
        "sk_test",
        transport=httpx.MockTransport(script),
        sleep=slept.append,
        retry=RetryPolicy(attempts=3, base_seconds=0.1, cap_seconds=2.0),
        **kwargs,
    )
    return client, slept


def test_create_delivery_sends_one_generated_key_and_retries_with_it():
    script = Script(
        httpx.Response(503),
        httpx.ConnectError("reset"),
        httpx.Response(202, json={"id": 7, "status": "pending"}),
    )
    client, slept = client_for(script)
    delivery = client.create_delivery(customer="acme", action="trello.move_card", input={"a": 1})
    assert delivery == {"id": 7, "status": "pending"}
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert len(script.requests) == 3 and len(keys) == 1
    first = script.requests[0]
    assert first.url == f"{BASE}/api/v1/deliveries/"
    assert first.headers["Authorization"] == "Bearer sk_test"
    assert json.loads(first.content) == {
        "customer": "acme",
        "action": "trello.move_card",
        "input": {"a": 1},
    }
    assert len(slept) == 2 and all(0 <= s <= 2.0 for s in slept)


def test_two_logical_calls_get_two_keys_and_a_given_key_is_kept():
    script = Script(*(httpx.Response(202, json={"id": n}) for n in range(3)))
    client, _ = client_for(script)
    for _ in range(2):
        client.create_delivery(customer="acme", action="x.y", input={})
    client.create_delivery(customer="acme", action="x.y", input={}, idempotency_key="order-42")
    keys = [r.headers["Idempotency-Key"] for r in script.requests]
    assert keys[0] != keys[1] and keys[2] == "order-42"


def test_retry_after_is_honoured_and_clamped():
    script = Script(
        httpx.Response(429, headers={"Retry-After": "1.5"}),
        httpx.Response(429, headers={"Retry-After": "86400"}),
        httpx.Response(200, json={"id": 1}),
    )
    client, slept = client_for(script)
    client.get_delivery(1)
    assert slept == [1.5, 2.0]


def test_gives_up_after_its_attempts_with_the_problem():
    script = Script(*(httpx.Response(503, json={**PROBLEM, "status": 503}) for _ in range(3)))
    client, slept = client_for(script)
    with pytest.raises(ApiError) as caught:
        client.get_delivery(1)
    assert caught.value.status == 503 and len(script.requests) == 3 and len(slept) == 2


def test_a_refusal_is_raised_at_once_with_its_field_errors():
    problem = {**PROBLEM, "errors": {"input": ["bad"]}}
    script = Script(httpx.Response(400, json=problem))
    client, slept = client_for(script)
    with pytest.raises(ApiError) as caught:
        client.create_delivery(customer="acme", action="x.y", input={})
    assert caught.value.errors == {"input": ["bad"]} and "input: bad" in str(caught.value)
    assert len(script.requests) == 1 and slept == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.retry_delivery(3),
        lambda c: c.cancel_delivery(3),
        lambda c: c.retry_dead_letters(all=True),
    ],
)
def test_state_changes_without_a_key_are_never_repeated(call):
    script = Script(httpx.Response(503), httpx.Response(202, json={}))
    client, _ = client_for(script)
    with pytest.raises(ApiError):
        call(client)
    assert len(script.requests) == 1


def test_a_connection_error_on_a_state_change_is_raised_not_retried():
    script = Script(httpx.ConnectError("reset"))
    client, _ = client_for(script)
    with pytest.raises(httpx.ConnectError):
        client.retry_delivery(3)


def test_dead_letter_retry_body_and_dry_run():
    script = Script(
        httpx.Response(200, json={"dry_run": True, "would_retry": 4}),
        httpx.Response(202, json={"retried": 4}),
    )
    client, _ = client_for(script)
    assert client.retry_dead_letters(filter={"customer": "acme"}, dry_run=True)["would_retry"] == 4
    assert client.retry_dead_letters(ids=[1, 2])["retried"] == 4
    dry, real = script.requests
    assert dry.url.params["dry_run"] == "true" and json.loads(dry.content) == {
        "filter": {"customer": "acme"}
    }
    assert "dry_run" not in real.url.params and json.loads(real.content) == {"ids": [1, 2]}


def test_paginate_follows_next_links_to_the_end():
    script = Script(
        httpx.Response(200, json={"next": f"{BASE}/api/v1/dead-letters/?cursor=b", "results": [1]}),
        httpx.Response(200, json={"next": None, "results": [2, 3]}),
    )
    client, _ = client_for(script)
    assert list(client.list_dead_letters(customer="acme")) == [1, 2, 3]
    assert script.requests[0].url.params["customer"] == "acme"
    assert script.requests[1].url.params["cursor"] == "b"


SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 24).decode()


def _signed(secret: str, body: bytes, at: float | None = None) -> dict:
    at = time.time() if at is None else at
    when = datetime.fromtimestamp(at, tz=UTC)
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(at)),
        "webhook-signature": Webhook(secret).sign("msg_1", when, body.decode()),
    }


def test_verify_webhook_accepts_any_of_the_secrets_during_a_rotation():
    body = json.dumps({"id": "e1", "type": "trello.card.moved", "data": {}}).encode()
    headers = {k.title(): v for k, v in _signed(SECRET, body).items()}  # any header case
    assert verify_webhook(SECRET, headers, body)["type"] == "trello.card.moved"
    assert verify_webhook([OTHER, SECRET], headers, body)["id"] == "e1"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),  # body changed
        lambda h, b: ({**h, "webhook-id": "msg_2"}, b),  # id changed
        lambda h, b: (_signed(SECRET, b, at=time.time() - 3600), b),  # an hour old
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
    ],
)
def test_verify_webhook_refuses_what_was_not_signed_now_by_the_secret(tamper):
    body = b'{"id":"e1"}'
    headers, body = tamper(_signed(SECRET, body), body)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers, body)


def test_verify_webhook_refuses_another_secret_and_a_malformed_one():
    body = b'{"id":"e1"}'
    headers = _signed(SECRET, body)
    for wrong in (OTHER, "not base64 at all"):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(wrong, headers, body)
