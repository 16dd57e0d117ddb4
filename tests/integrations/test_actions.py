import json

import pytest
import requests
import responses
from rest_framework.exceptions import ValidationError

from integrations.deliveries.prepare import PreparedCall, action_prepare
from integrations.deliveries.send import connection_check, operation_execute
from integrations.egress import MAX_RESPONSE_BYTES
from integrations.services import integration_create
from tests.integrations.conftest import TIMEOUT

REVIEW, DONE = "5abbe4b7ddc1b351ef961401", "5abbe4b7ddc1b351ef961402"
FRAME_REVIEW, FRAME_DONE = "3458764517517800001", "3458764517517800002"
TRELLO_CREDS = {"api_key": "f" * 32, "token": "e" * 64}
MIRO_CREDS = {"access_token": "miro-token-xyz"}
PROCEED = {"item": "a1b2c3d4e5f6a1b2c3d4e5f6", "from": "review", "to": "done"}


@pytest.fixture
def trello_acme(acme, fake_provider):
    return integration_create(
        customer=acme,
        provider_key="trello",
        config={
            "base_url": f"{fake_provider.url}/trello",
            "stages": {"review": REVIEW, "done": DONE},
        },
    )


@pytest.fixture
def miro_globex(globex, fake_provider):
    return integration_create(
        customer=globex,
        provider_key="miro",
        config={
            "base_url": f"{fake_provider.url}/miro",
            "board_id": "uXjVOD6LSME=",
            "stages": {"review": FRAME_REVIEW, "done": FRAME_DONE},
        },
    )


def _proceed(customer, credentials):
    """The caller's code: identical whatever provider serves the customer."""
    call = action_prepare(customer=customer, action="workflow.proceed", input=PROCEED)
    with requests.Session() as session:
        return call, operation_execute(
            call=call, customer=customer, credentials=credentials, session=session, timeout=TIMEOUT
        )


def test_workflow_proceed_on_trello(acme, trello_acme, fake_provider):
    call, outcome = _proceed(acme, TRELLO_CREDS)
    assert call == PreparedCall(
        provider_key="trello",
        operation="move_card",
        integration_id=trello_acme.pk,
        input={"card_id": "a1b2c3d4e5f6a1b2c3d4e5f6", "list_id": DONE},
        capability="workflow.proceed",
    )
    assert (outcome.outcome, outcome.result) == (
        "success",
        {"item": "a1b2c3d4e5f6a1b2c3d4e5f6", "stage": "done"},
    )
    [entry] = fake_provider.journal()
    assert (entry["method"], entry["path"]) == ("PUT", "/trello/1/cards/a1b2c3d4e5f6a1b2c3d4e5f6")
    assert json.loads(entry["body"]) == {"idList": DONE}
    assert entry["query"] == {"key": "f" * 32, "token": "e" * 64}
    assert "f" * 32 not in json.dumps(outcome.as_dict())


def test_workflow_proceed_on_miro(globex, miro_globex, fake_provider):
    call, outcome = _proceed(globex, MIRO_CREDS)
    assert (call.provider_key, call.operation, call.capability) == (
        "miro",
        "move_item",
        "workflow.proceed",
    )
    assert (outcome.outcome, outcome.result) == (
        "success",
        {"item": "a1b2c3d4e5f6a1b2c3d4e5f6", "stage": "done"},
    )
    [entry] = fake_provider.journal()
    assert (entry["method"], entry["path"]) == (
        "PATCH",
        "/miro/v2/boards/uXjVOD6LSME=/items/a1b2c3d4e5f6a1b2c3d4e5f6",
    )
    assert json.loads(entry["body"]) == {"parent": {"id": FRAME_DONE}}
    assert entry["headers"]["Authorization"] == "Bearer miro-token-xyz"


def test_session_connection_is_reused_across_calls(acme, trello_acme, fake_provider):
    call = action_prepare(customer=acme, action="workflow.proceed", input=PROCEED)
    with requests.Session() as session:
        for _ in range(3):
            operation_execute(
                call=call,
                customer=acme,
                credentials=TRELLO_CREDS,
                session=session,
                timeout=TIMEOUT,
            )
    assert len({e["connection"] for e in fake_provider.journal()}) == 1


@pytest.mark.parametrize(
    ("fault", "outcome", "retry_after", "error_class"),
    [
        ({"status": 503, "count": 1, "retry_after": 4}, "retryable", 4.0, "http_503"),
        ({"status": 429, "count": 1}, "rate_limited", 10.0, "rate_limited"),
        ({"status": 401, "count": 1}, "auth_failed", None, "auth_failed"),
        ({"drop_connection": True, "count": 1}, "retryable", None, "connection_error"),
    ],
)
def test_faults_are_classified(
    acme, trello_acme, fake_provider, fault, outcome, retry_after, error_class
):
    fake_provider.fault(path_prefix="/trello/", **fault)
    _, result = _proceed(acme, TRELLO_CREDS)
    assert (result.outcome, result.retry_after, result.error_class) == (
        outcome,
        retry_after,
        error_class,
    )


def test_read_timeout_is_retryable(acme, trello_acme, fake_provider):
    fake_provider.fault(path_prefix="/trello/", latency_ms=300, count=1)
    call = action_prepare(customer=acme, action="workflow.proceed", input=PROCEED)
    with requests.Session() as session:
        outcome = operation_execute(
            call=call, customer=acme, credentials=TRELLO_CREDS, session=session, timeout=(1, 0.05)
        )
    assert (outcome.outcome, outcome.error_class) == ("retryable", "read_timeout")
    assert "e" * 64 not in outcome.error


@pytest.mark.parametrize(
    ("fault", "ok", "outcome"),
    [
        (None, True, "success"),
        ({"status": 401}, False, "auth_failed"),
        ({"status": 429}, False, "rate_limited"),
    ],
)
def test_connection_check(trello_acme, miro_globex, fake_provider, fault, ok, outcome):
    if fault:
        fake_provider.fault(path_prefix="/", **fault)
    with requests.Session() as session:
        trello = connection_check(
            integration=trello_acme, credentials=TRELLO_CREDS, session=session, timeout=TIMEOUT
        )
        miro = connection_check(
            integration=miro_globex, credentials=MIRO_CREDS, session=session, timeout=TIMEOUT
        )
    assert (trello.ok, trello.outcome, miro.ok, miro.outcome) == (ok, outcome, ok, outcome)
    paths = [e["path"] for e in fake_provider.journal()]
    assert paths == ["/trello/1/members/me", "/miro/v2/boards/uXjVOD6LSME="]


@pytest.mark.parametrize(
    ("provider", "config", "path"),
    [
        ("selenium", {}, "/selenium/status"),
        ("shopify", {}, "/shopify/admin/api/2025-01/shop.json"),
        ("ga4", {}, "/ga4/debug/mp/collect"),
        ("http", {}, "/http/"),
    ],
)
def test_connection_check_other_providers(acme, fake_provider, provider, config, path):
    integration = integration_create(
        customer=acme, provider_key=provider, config={"base_url": f"{fake_provider.url}/{provider}"}
    )
    credentials = {"access_token": "x", "measurement_id": "G-1", "api_secret": "s", "token": "t"}
    with requests.Session() as session:
        outcome = connection_check(
            integration=integration, credentials=credentials, session=session, timeout=TIMEOUT
        )
    assert outcome.ok, outcome.error
    assert fake_provider.journal()[0]["path"] == path


# -- action_prepare errors name the field ------------------------------------------------------


def _error(customer, action, input):
    with pytest.raises(ValidationError) as caught:
        action_prepare(customer=customer, action=action, input=input)
    return caught.value.detail


def test_missing_to(acme, trello_acme):
    assert "to" in _error(acme, "workflow.proceed", {"item": "x"})["input"]


def test_unknown_stage_names_the_field(acme, trello_acme):
    errors = _error(acme, "workflow.proceed", {"item": "x", "from": "limbo", "to": "nowhere"})[
        "input"
    ]
    assert set(errors) == {"from", "to"}
    assert "Known stages: done, review" in str(errors["to"][0])


def test_capability_without_integration(globex):
    assert "no active integration" in str(_error(globex, "workflow.proceed", PROCEED)["action"][0])


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("nope.move", "Unknown provider 'nope'"),
        ("trello.fly", "Unknown operation 'fly'"),
        ("stripe.anything", "only receives webhooks"),
        ("dance", "Unknown action 'dance'"),
        ("", "Unknown action"),
    ],
)
def test_unknown_actions(acme, action, message):
    assert message in str(_error(acme, action, {})["action"][0])


def test_invalid_item_is_reported_on_the_callers_field(acme, trello_acme):
    errors = _error(acme, "workflow.proceed", {"item": "not a card!", "to": "done"})["input"]
    assert set(errors) == {"item"}


def test_input_must_be_an_object(acme):
    assert "input" in _error(acme, "trello.move_card", ["x"])


def test_invalid_stage_id_in_config_is_reported_on_action(acme):
    integration_create(customer=acme, provider_key="trello", config={"stages": {"done": "not-hex"}})
    assert "Check its config" in str(
        _error(acme, "workflow.proceed", {"item": "c", "to": "done"})["action"][0]
    )


def test_several_integrations_for_a_capability_are_ambiguous(acme, trello_acme, fake_provider):
    integration_create(
        customer=acme, provider_key="miro", config={"board_id": "b", "stages": {"done": "f"}}
    )
    assert "several" in str(_error(acme, "workflow.proceed", PROCEED)["action"][0])


def _move_directly(customer, *, body: bytes, status: int):
    with responses.RequestsMock() as mock:
        mock.put("https://api.trello.com/1/cards/abc", body=body, status=status)
        call = action_prepare(
            customer=customer, action="trello.move_card", input={"card_id": "abc", "list_id": DONE}
        )
        with requests.Session() as session:
            return operation_execute(
                call=call,
                customer=customer,
                credentials=TRELLO_CREDS,
                session=session,
                timeout=TIMEOUT,
            )


def test_oversized_response_is_refused(acme):
    outcome = _move_directly(acme, body=b"x" * (MAX_RESPONSE_BYTES + 1), status=200)
    assert (outcome.outcome, outcome.error_class) == ("terminal", "response_too_large")


def test_records_cap_the_response_body_at_20_kb(acme):
    outcome = _move_directly(acme, body=b"y" * 50_000, status=500)
    assert outcome.outcome == "retryable"
    assert outcome.response["body"] == "y" * 20 * 1024
    assert outcome.request["method"] == "PUT"
    assert outcome.request["body"] == json.dumps({"idList": DONE})
