import json

import pytest
import responses

BASE = "https://hooks.internal.example/api"
CONFIG = {"base_url": BASE, "auth_header": "X-Api-Token", "auth_scheme": ""}


@responses.activate
def test_request_with_configured_auth_header_and_idempotency_key(execute):
    responses.post(f"{BASE}/orders", json={"ok": True}, status=201)
    outcome = execute(
        "http.request",
        {"method": "POST", "path": "/orders", "body": {"n": 1}, "query": {"a": "b"}},
        credentials={"token": "tok-123456"},
        config=CONFIG,
        idempotency_key="idem-1",
    )
    assert (outcome.outcome, outcome.result) == ("success", {"status": 201, "body": {"ok": True}})
    sent = responses.calls[0].request
    assert sent.headers["X-Api-Token"] == "tok-123456"
    assert sent.headers["Idempotency-Key"] == "idem-1"
    assert sent.url == f"{BASE}/orders?a=b"
    assert json.loads(sent.body) == {"n": 1}
    assert outcome.request["headers"]["X-Api-Token"] == "****"


@responses.activate
def test_default_bearer_and_text_result(execute):
    responses.get(f"{BASE}/", body="<html>hello</html>")
    outcome = execute(
        "http.request", {"method": "GET"}, credentials={"token": "t0ken"}, config={"base_url": BASE}
    )
    assert outcome.result == {"status": 200, "body": "<html>hello</html>"}
    assert responses.calls[0].request.headers["Authorization"] == "Bearer t0ken"


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (429, {"Retry-After": "3"}, "rate_limited", 3.0),
        (408, {}, "retryable", None),
        (425, {}, "retryable", None),
        (422, {}, "terminal", None),
    ],
)
@responses.activate
def test_generic_status_semantics(execute, status, headers, outcome, retry_after):
    responses.post(f"{BASE}/", status=status, headers=headers)
    result = execute("http.request", {}, credentials={}, config={"base_url": BASE})
    assert (result.outcome, result.retry_after) == (outcome, retry_after)


@pytest.mark.parametrize(
    "input",
    [
        {"path": "no-slash"},
        {"path": "//evil.example/"},
        {"headers": {"Host": "x"}},
        {"method": "TRACE"},
    ],
)
def test_invalid_input(acme, input):
    from rest_framework.exceptions import ValidationError

    from integrations.deliveries.prepare import action_prepare
    from integrations.services import integration_create

    integration_create(customer=acme, provider_key="http", config={"base_url": BASE})
    with pytest.raises(ValidationError) as caught:
        action_prepare(customer=acme, action="http.request", input=input)
    assert set(caught.value.detail["input"]) == set(input)
