import base64
import json

import pytest
import responses

GRID = "http://grid.internal:4444"
CONFIG = {"base_url": GRID}
NODE = {
    "id": "340232e5-0000",
    "uri": "http://10.0.2.15:5555",
    "maxSessions": 1,
    "osInfo": {"arch": "amd64", "name": "Windows 10", "version": "10.0"},
    "heartbeatPeriod": 60000,
    "availability": "UP",
    "version": "4.0.0 (revision 3a21814679)",
    "slots": [
        {
            "lastStarted": "1970-01-01T00:00:00Z",
            "session": None,
            "id": {"hostId": "340232e5-0000", "id": "49d6090b-0000"},
            "stereotype": {"browserName": "firefox", "platformName": "WIN10"},
        }
    ],
}


@responses.activate
def test_status_counts_free_slots_on_up_nodes_only(execute):
    busy = {**NODE, "slots": [{**NODE["slots"][0], "session": {"sessionId": "s1"}}]}
    draining = {**NODE, "availability": "DRAINING"}
    value = {"ready": False, "message": "Selenium Grid not ready.", "nodes": [NODE, busy, draining]}
    responses.get(f"{GRID}/status", json={"value": value})
    outcome = execute("selenium.status", {}, credentials={}, config=CONFIG)
    assert outcome.result == {
        "ready": False,
        "message": "Selenium Grid not ready.",
        "nodes_up": 2,
        "free_slots": 1,
    }


@responses.activate
def test_create_and_delete_session_with_basic_auth(execute):
    responses.post(
        f"{GRID}/session",
        json={"value": {"sessionId": "27c8437e", "capabilities": {"browserName": "firefox"}}},
    )
    creds = {"username": "grid", "password": "grid-password"}
    outcome = execute(
        "selenium.create_session",
        {"always_match": {"browserName": "firefox"}},
        credentials=creds,
        config=CONFIG,
    )
    assert outcome.result == {"session_id": "27c8437e", "capabilities": {"browserName": "firefox"}}
    sent = responses.calls[0].request
    assert json.loads(sent.body) == {"capabilities": {"alwaysMatch": {"browserName": "firefox"}}}
    assert (
        sent.headers["Authorization"] == "Basic " + base64.b64encode(b"grid:grid-password").decode()
    )
    assert outcome.request["headers"]["Authorization"] == "****"


@pytest.mark.parametrize(
    ("status", "body", "outcome", "error_class"),
    [
        (
            500,
            {
                "value": {
                    "error": "session not created",
                    "message": "Could not start a new session. New session request timed out",
                    "stacktrace": "",
                }
            },
            "retryable",
            "queue_timeout",
        ),
        (
            500,
            {
                "value": {
                    "error": "session not created",
                    "message": "No nodes support the capabilities in the request",
                    "stacktrace": "",
                }
            },
            "terminal",
            "session_not_created",
        ),
        (
            404,
            {
                "value": {
                    "error": "invalid session id",
                    "message": "No active session with ID 1234",
                    "stacktrace": "",
                }
            },
            "terminal",
            "http_404",
        ),
        (
            404,
            {
                "value": "/session/1234",
                "message": "Unable to execute request for an existing session: Unable to find session with ID: 1234",  # noqa: E501
            },
            "terminal",
            "http_404",
        ),
        (401, "Unauthorized", "auth_failed", "auth_failed"),
        (502, "<html>Bad gateway</html>", "retryable", "http_502"),
    ],
)
@responses.activate
def test_w3c_errors(execute, status, body, outcome, error_class):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.delete(f"{GRID}/session/1234", status=status, **kwargs)
    result = execute(
        "selenium.delete_session", {"session_id": "1234"}, credentials={}, config=CONFIG
    )
    assert (result.outcome, result.error_class) == (outcome, error_class)


@responses.activate
def test_status_wrong_shape_is_malformed(execute):
    responses.get(f"{GRID}/status", json={"ready": True})
    result = execute("selenium.status", {}, credentials={}, config=CONFIG)
    assert (result.outcome, result.error_class) == ("terminal", "malformed_response")
