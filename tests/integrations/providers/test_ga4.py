import json

import pytest
import responses
from rest_framework.exceptions import ValidationError

from integrations.deliveries.prepare import action_prepare

CREDS = {"measurement_id": "G-TEST123456", "api_secret": "ga4-api-secret"}
EVENT = {
    "name": "login",
    "params": {"method": "Google", "session_id": "123", "engagement_time_msec": 100},
}
TRACK = {"client_id": "555.123", "events": [EVENT]}


@responses.activate
def test_track_eu_customer_uses_eu_endpoint(execute, acme):
    responses.post("https://region1.google-analytics.com/mp/collect", status=204, body="")
    outcome = execute("ga4.track", TRACK, credentials=CREDS, customer=acme)
    assert (outcome.outcome, outcome.result) == ("success", {"accepted": True, "events": 1})
    sent = responses.calls[0].request
    assert "measurement_id=G-TEST123456" in sent.url and "api_secret=ga4-api-secret" in sent.url
    assert json.loads(sent.body) == {"client_id": "555.123", "events": [EVENT]}
    assert "ga4-api-secret" not in json.dumps(outcome.as_dict())


@responses.activate
def test_track_us_customer_uses_global_endpoint(execute, globex):
    responses.post("https://www.google-analytics.com/mp/collect", status=204)
    assert execute("ga4.track", TRACK, credentials=CREDS, customer=globex).ok


@pytest.mark.parametrize("body", [b"<html>odd</html>", b"", b"[]"])
@responses.activate
def test_any_2xx_body_is_accepted_on_collect(execute, body):
    # GA4 documents no payload feedback on /mp/collect: the body carries no meaning.
    responses.post("https://region1.google-analytics.com/mp/collect", status=200, body=body)
    assert execute("ga4.track", TRACK, credentials=CREDS).ok


@responses.activate
def test_validation_server_messages_are_terminal(execute):
    responses.post(
        "https://region1.google-analytics.com/debug/mp/collect",
        json={
            "validationMessages": [
                {
                    "fieldPath": "events",
                    "description": "Event at index: [0] has invalid name [_badEventName]. Names must start with an alphabetic character.",  # noqa: E501
                    "validationCode": "NAME_INVALID",
                }
            ]
        },
    )
    outcome = execute("ga4.track", {**TRACK, "validate_only": True}, credentials=CREDS)
    assert (outcome.outcome, outcome.error_class) == ("terminal", "rejected")
    assert "NAME_INVALID" in outcome.error


@responses.activate
def test_non_2xx_is_classified(execute):
    responses.post(
        "https://region1.google-analytics.com/mp/collect", status=400, body="Bad Request"
    )
    responses.post(
        "https://region1.google-analytics.com/mp/collect", status=500, body="<html>x</html>"
    )
    assert execute("ga4.track", TRACK, credentials=CREDS).outcome == "terminal"
    assert execute("ga4.track", TRACK, credentials=CREDS).outcome == "retryable"


def _errors(acme, input):
    with pytest.raises(ValidationError) as caught:
        action_prepare(customer=acme, action="ga4.track", input=input)
    return caught.value.detail["input"]


@pytest.mark.parametrize(
    ("input", "path"),
    [
        ({**TRACK, "events": [{"name": "_badEventName"}]}, ("events", 0, "name")),
        ({**TRACK, "events": [{"name": "9lives"}]}, ("events", 0, "name")),
        ({**TRACK, "events": [{"name": "a" * 41}]}, ("events", 0, "name")),
        ({**TRACK, "events": [{"name": "ok"}] * 26}, ("events",)),
        ({**TRACK, "events": []}, ("events",)),
        (
            {**TRACK, "events": [{"name": "ok", "params": {f"p{i}": 1 for i in range(26)}}]},
            ("events", 0, "params"),
        ),
        ({**TRACK, "events": [{"name": "ok", "params": {"bad-name": 1}}]}, ("events", 0, "params")),
        (
            {**TRACK, "events": [{"name": "ok", "params": {"p": "x" * 101}}]},
            ("events", 0, "params"),
        ),
        (
            {**TRACK, "events": [{"name": "ok", "params": {"items": [{"item_name": "x" * 101}]}}]},
            ("events", 0, "params"),
        ),
        ({**TRACK, "user_properties": {"a" * 25: {"value": "x"}}}, ("user_properties",)),
        ({**TRACK, "user_properties": {"tier": {"value": "x" * 37}}}, ("user_properties",)),
        ({**TRACK, "user_properties": {"tier": "gold"}}, ("user_properties",)),
        ({"events": [EVENT]}, ("client_id",)),
        (
            {
                **TRACK,
                "events": [{"name": "ok", "params": {"items": [{"item_name": "x" * 100}] * 1300}}],
            },
            ("events",),
        ),
    ],
    ids=[
        "leading-underscore",
        "leading-digit",
        "41-chars",
        "26-events",
        "no-events",
        "26-params",
        "param-name",
        "param-value-101",
        "item-value",
        "user-property-name-25",
        "user-property-value-37",
        "user-property-shape",
        "no-client-id",
        "body-over-130kB",
    ],
)
def test_limits_are_enforced_before_sending(acme, input, path):
    errors = _errors(acme, input)
    for key in path:
        if isinstance(errors, list) and isinstance(key, str):
            errors = errors[0]
        errors = errors[key]
    assert errors


def test_boundaries_are_accepted(acme):
    event = {"name": "a" * 40, "params": {f"p{i}": "x" * 100 for i in range(25)}}
    call = action_prepare(
        customer=acme,
        action="ga4.track",
        input={
            "client_id": "1",
            "events": [event] * 2,
            "user_properties": {"a" * 24: {"value": "y" * 36}},
        },
    )
    assert call.input["events"][0]["name"] == "a" * 40
