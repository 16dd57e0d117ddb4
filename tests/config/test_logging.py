"""Structured logs: the formatter (json and console), the X-Request-ID middleware, and the
request id that follows a delivery from the API into its attempt's log line."""

import io
import json
import logging

import pytest
import structlog

from config.logging import log_format, logging_config, structured_formatter
from config.request_id import REQUEST_ID_MAX_LENGTH
from tests.webhooks.conftest import make_endpoint, post_webhook  # noqa: F401
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """Every record of every logger, as the json formatter renders it; a function giving the
    parsed lines so far."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structured_formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    level, root.level = root.level, logging.DEBUG
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.level = level
        structlog.contextvars.clear_contextvars()


def test_format_defaults_to_json_without_debug_and_console_with_it(monkeypatch):
    monkeypatch.delenv("SWITCHYARD_LOG_FORMAT", raising=False)
    monkeypatch.setenv("DEBUG", "false")
    assert log_format() == "json"
    monkeypatch.setenv("DEBUG", "true")
    assert log_format() == "console"
    monkeypatch.setenv("SWITCHYARD_LOG_FORMAT", "json")
    assert log_format() == "json"


def test_an_unknown_format_is_refused(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("SWITCHYARD_LOG_FORMAT", "xml")
    with pytest.raises(ImproperlyConfigured, match="SWITCHYARD_LOG_FORMAT"):
        log_format()


def test_plain_and_structured_records_render_as_one_json_object_each(json_lines):
    structlog.contextvars.bind_contextvars(request_id="req-1", customer="acme")
    logging.getLogger("django.request").warning(
        "Not Found: %s", "/x", extra={"status_code": 404, "request": object()}
    )
    structlog.stdlib.get_logger("integrations.test").info("deliveries.accepted", delivery_id=7)
    plain, native = json_lines()
    assert plain["event"] == "Not Found: /x"
    assert (plain["level"], plain["logger"], plain["status_code"]) == (
        "warning",
        "django.request",
        404,
    )
    assert "request" not in plain  # the request object is not an allowed extra
    assert native["event"] == "deliveries.accepted"
    assert (native["delivery_id"], native["logger"], native["level"]) == (
        7,
        "integrations.test",
        "info",
    )
    for line in (plain, native):
        assert (line["request_id"], line["customer"]) == ("req-1", "acme")
        assert line["timestamp"].endswith("Z")


def test_an_exception_is_one_line_with_its_traceback(json_lines):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    [line] = json_lines()
    assert "ValueError: boom" in line["exception"]


def test_logging_config_routes_django_through_the_root_handler():
    config = logging_config(fmt="json", level="INFO")
    assert config["loggers"]["django"] == {"handlers": [], "level": "INFO", "propagate": True}
    assert config["handlers"]["console"]["formatter"] == "structured"


def test_a_request_id_is_generated_and_returned(client):
    response = client.get("/healthz")
    generated = response["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/healthz")["X-Request-ID"] != generated


@pytest.mark.parametrize(
    "supplied, kept",
    [
        ("abc-123_DEF.4:5", True),
        ("x" * REQUEST_ID_MAX_LENGTH, True),
        ("x" * (REQUEST_ID_MAX_LENGTH + 1), False),
        ("has space", False),
        ('quote"and\\', False),
        ("", False),
    ],
)
def test_a_supplied_request_id_is_kept_only_when_sane(client, supplied, kept):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=supplied)
    assert (response["X-Request-ID"] == supplied) is kept


def test_an_early_refusal_carries_the_request_id_too(client):
    response = client.post(
        "/api/v1/deliveries/",
        data=b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(10**9),
        HTTP_X_REQUEST_ID="early-1",
    )
    assert response.status_code == 413
    assert response["X-Request-ID"] == "early-1"


def test_an_attempt_line_carries_its_delivery_and_the_request_id(
    api, fake_provider, json_lines, django_capture_on_commit_callbacks
):
    from integrations.models import Delivery
    from tests.integrations.deliveries.conftest import CARD, trello_customer_at

    trello_customer_at(fake_provider.url)
    with django_capture_on_commit_callbacks() as queued:
        response = api.post(
            "/api/v1/deliveries/",
            {
                "customer": "acme",
                "action": "workflow.proceed",
                "input": {"item": CARD, "to": "done"},
            },
            format="json",
            HTTP_X_REQUEST_ID="req-e2e-1",
        )
    assert response.status_code == 202, response.content
    delivery_id = response.json()["id"]
    assert Delivery.objects.get(pk=delivery_id).request_id == "req-e2e-1"
    # The worker knows the request only from the delivery row, not from this context.
    structlog.contextvars.clear_contextvars()
    for callback in queued:
        callback()
    lines = json_lines()
    [accepted] = [line for line in lines if line["event"] == "deliveries.accepted"]
    assert (accepted["delivery_id"], accepted["request_id"]) == (delivery_id, "req-e2e-1")
    [attempted] = [line for line in lines if line["event"] == "deliveries.attempted"]
    assert attempted["delivery_id"] == delivery_id
    assert attempted["request_id"] == "req-e2e-1"
    assert (attempted["attempt"], attempted["provider"], attempted["customer"]) == (
        1,
        "trello",
        "acme",
    )
    assert attempted["status"] == "succeeded"


def test_inbound_receive_lines_carry_the_event_id_provider_and_customer(
    make_endpoint,  # noqa: F811
    post_webhook,  # noqa: F811
    json_lines,
):
    endpoint = make_endpoint("shopify")
    assert post_webhook(endpoint).status_code == 202
    assert post_webhook(endpoint).status_code == 200  # the same event again: a duplicate
    assert post_webhook(endpoint, secret="not-the-secret").status_code == 401
    event = InboundEvent.objects.get(endpoint=endpoint)
    lines = json_lines()
    ours = {"event_id": event.pk, "provider": "shopify", "customer": "acme"}
    [received] = [line for line in lines if line["event"] == "webhooks.received"]
    assert received.items() >= {**ours, "endpoint": str(endpoint.public_id)}.items()
    assert received["external_id"] == event.external_id
    assert received["logger"] == "webhooks.services.receiving"
    [duplicate] = [line for line in lines if line["event"] == "webhooks.duplicate"]
    assert duplicate.items() >= ours.items()
    [rejected] = [line for line in lines if line["event"] == "webhooks.signature_rejected"]
    assert (rejected["provider"], rejected["customer"]) == ("shopify", "acme")
    # Each inbound line is a bare name, its ids in fields: none left inside the text.
    inbound = [line["event"] for line in lines if line["event"].startswith("webhooks.")]
    assert len(inbound) >= 4 and not [name for name in inbound if " " in name or "=" in name]
