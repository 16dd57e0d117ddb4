"""Real processes. With SWITCHYARD_LOG_FORMAT=json every line that gunicorn (its own lines and
the access log), the worker (django-q2's cluster included) and the dispatcher write is one JSON
object, and the attempt's line carries the delivery id and the request id of the API call that
created it. The worker (whose tasks run in child processes) and the dispatcher serve the
metrics they record on SWITCHYARD_METRICS_PORT."""

import json
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integrations.deliveries.conftest import api_session, proceed, trello_customer_at
from tests.processes import ProcessStack, free_port

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def _parsed(stack: ProcessStack, name: str) -> list[dict]:
    lines = [line for line in stack.output(name).splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{name} wrote a line that is not JSON: {line!r}\n{stack.logs()}")
    return parsed


def test_every_line_is_json_and_the_attempt_names_delivery_and_request(
    django_db_setup, tmp_path, fake_provider
):
    stack = ProcessStack.on_test_database(
        tmp_path,
        SWITCHYARD_LOG_FORMAT="json",
        SWITCHYARD_DISPATCH_INTERVAL_SECONDS="0.2",
        SWITCHYARD_HEARTBEAT_SECONDS="1",
    )
    trello_customer_at(fake_provider.url)
    session = api_session("logs")
    try:
        port = free_port()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        bind = f"127.0.0.1:{port}"
        stack.start(
            "web",
            [
                str(gunicorn),
                "config.wsgi",
                "--bind",
                bind,
                "--workers",
                "1",
                "--access-logfile",
                "-",
            ],
        )
        stack.web_url = f"http://{bind}"
        stack.wait_for(lambda: session.get(f"{stack.web_url}/healthz", timeout=1).ok, what="web")
        worker_port, dispatcher_port = free_port(), free_port()
        stack.env["SWITCHYARD_METRICS_PORT"] = str(worker_port)
        stack.start_worker()
        stack.env["SWITCHYARD_METRICS_PORT"] = str(dispatcher_port)
        stack.start_dispatcher()
        session.headers["X-Request-ID"] = "req-processes-1"
        delivery_id = proceed(stack, session)
        del session.headers["X-Request-ID"]
        session.get(f"{stack.web_url}/nowhere", timeout=5)  # Django logs a 404 itself

        def attempted():
            return [
                line
                for line in _parsed(stack, "worker")
                if line["event"] == "deliveries.attempted" and line["delivery_id"] == delivery_id
            ]

        stack.wait_for(attempted, what="the attempt's log line", timeout=30)
        # Each process serves its metrics once it has started and records them after it logs, so
        # the scrape waits for what it checks rather than racing a slow start.
        ok = (("outcome", "success"), ("provider", "trello"))
        _scraped_when_counted(
            stack,
            worker_port,
            ("switchyard_delivery_attempts_total", ok),
            ("switchyard_delivery_attempt_duration_seconds_count", ok),
            ("switchyard_delivery_latency_seconds_count", (("provider", "trello"),)),
            what="the worker's metrics",
        )
        _scraped_when_counted(
            stack,
            dispatcher_port,
            (
                "switchyard_dispatch_step_duration_seconds_count",
                (("step", "relay_due_deliveries"),),
            ),
            what="the dispatcher's metrics",
        )
    finally:
        session.close()
        stack.stop()
    [line] = attempted()
    assert line["request_id"] == "req-processes-1"
    assert (line["level"], line["logger"]) == ("info", "integrations.deliveries.services.settle")
    web = _parsed(stack, "web")
    assert any(x["logger"] == "gunicorn.error" for x in web)  # gunicorn's own lines
    access = [
        x for x in web if x["event"] == "http.request" and x["request_id"] == "req-processes-1"
    ]
    assert access and access[0]["status"] == 202
    assert any(x["logger"] == "django.request" and x.get("status_code") == 404 for x in web)
    assert any(x["logger"] == "django-q" for x in _parsed(stack, "worker"))
    dispatcher = _parsed(stack, "dispatcher")
    assert any(x["event"] == "dispatch.started" for x in dispatcher)
    for lines in (web, dispatcher):
        assert all({"timestamp", "level", "logger", "event"} <= set(x) for x in lines)


def _scraped_when_counted(stack: ProcessStack, port: int, *wanted: tuple, what: str) -> None:
    """Scrape ``port`` until every ``(name, labels)`` in ``wanted`` has counted at least once;
    the stack's timeout, with every process's log, if that never happens."""

    def counted() -> bool:
        samples = _samples(port)
        return all(samples.get(key, 0) >= 1 for key in wanted)

    stack.wait_for(counted, what=f"{what}: {[name for name, _ in wanted]}", timeout=30)


def _samples(port: int) -> dict[tuple, float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
