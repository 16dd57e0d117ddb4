"""OpenTelemetry tracing (config/tracing.py): off unless OTEL_* variables ask for it; when on, an
API request, the worker's task and attempt and the provider call share one trace, the provider
gets a ``traceparent``, and inbound events are traced from receipt to the subscriber."""

import re
import uuid

import pytest
from django.core.exceptions import MiddlewareNotUsed
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode

from config import tracing
from config.middleware import TracingMiddleware
from integrations.deliveries.tasks import delivery_send_batch
from integrations.models import Delivery
from tests.integrations.deliveries.conftest import (
    CARD,
    api_session,
    proceed,
    trello_customer_at,
    wait_finished,
)
from tests.processes import ProcessStack
from tests.webhooks.conftest import SECRETS, Subscriber
from webhooks.models import InboundEvent
from webhooks.services import subscription_create

pytestmark = pytest.mark.django_db

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
# What the trello customer's credential holds (trello_customer_at): never in a span.
SECRET_VALUES = ("a" * 32, "b" * 64)
# A span as the console exporter prints it: its name, then its context's trace id.
CONSOLE_SPAN = re.compile(r'"name": "([^"]+)",\s*"context": \{\s*"trace_id": "0x([0-9a-f]{32})"')


@pytest.fixture
def spans(monkeypatch):
    """Tracing on, to an in-memory exporter; off again (as it was) after the test."""
    monkeypatch.setattr(tracing, "_tracer", tracing._tracer)
    exporter = InMemorySpanExporter()
    provider = tracing.tracer_provider({})  # the sampler and limits production uses
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.tracing_install(provider)
    return exporter


@pytest.fixture
def subscriber_app():
    app = Subscriber()
    yield app
    app.close()


@pytest.fixture
def tracing_off(monkeypatch):
    monkeypatch.setattr(tracing, "_tracer", None)


def api_proceed(api, **headers):
    response = api.post(
        "/api/v1/deliveries/",
        {"customer": "acme", "action": "workflow.proceed", "input": {"item": CARD, "to": "done"}},
        format="json",
        **headers,
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def one(finished, name):
    [span] = [span for span in finished if span.name == name]
    return span


def parent_of(span):
    return span.parent.span_id if span.parent else None


def traceparent_of(span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def test_request_task_attempt_and_provider_call_share_one_trace(spans, api, fake_provider):
    trello_customer_at(fake_provider.url)
    delivery_id = api_proceed(api)
    assert delivery_send_batch([delivery_id]) == {delivery_id: "succeeded"}

    finished = spans.get_finished_spans()
    [request] = [span for span in finished if span.kind == SpanKind.SERVER]
    task, attempt = one(finished, "deliveries.task"), one(finished, "delivery.attempt")
    [call] = [span for span in finished if span.kind == SpanKind.CLIENT]
    assert {s.context.trace_id for s in (request, task, attempt, call)} == {
        request.context.trace_id
    }
    assert request.parent is None
    assert parent_of(task) == request.context.span_id
    assert parent_of(attempt) == task.context.span_id
    assert parent_of(call) == attempt.context.span_id
    assert task.kind == SpanKind.CONSUMER

    assert request.name == "POST api/v1/deliveries/"
    assert request.attributes["http.response.status_code"] == 202
    assert attempt.attributes["switchyard.delivery_id"] == delivery_id
    assert attempt.attributes["switchyard.provider"] == "trello"
    assert attempt.attributes["switchyard.action"] == "workflow.proceed"
    assert attempt.attributes["switchyard.outcome"] == "success"
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["server.address"] == "127.0.0.1"
    assert call.attributes["switchyard.provider"] == "trello"

    [sent] = fake_provider.journal("/trello/1/cards/")
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    assert headers["traceparent"] == traceparent_of(call)


def test_spans_carry_no_secret_url_or_body(spans, api, fake_provider):
    trello_customer_at(fake_provider.url)
    delivery_send_batch([api_proceed(api)])
    finished = spans.get_finished_spans()
    assert len(finished) == 4  # request, task, attempt, provider call
    for span in finished:
        assert not {"url.full", "http.url", "url.query", "http.target"} & set(span.attributes)
        assert not span.events  # no recorded exception, whose message may quote a URL
        for value in span.attributes.values():
            assert not any(secret in str(value) for secret in SECRET_VALUES), span.name
            assert CARD not in str(value), span.name  # the input stays out too


@pytest.mark.django_db(transaction=True)
def test_queued_at_once_the_relay_span_is_under_the_request(spans, api, fake_provider):
    """Committed, the delivery is queued at once, within the request; django-q2's sync mode
    (tests) runs the task right there, under the relay's span."""
    trello_customer_at(fake_provider.url)
    delivery_id = api_proceed(api)
    assert Delivery.objects.get(pk=delivery_id).status == "succeeded"
    finished = spans.get_finished_spans()
    request = next(span for span in finished if span.kind == SpanKind.SERVER)
    relay, task = one(finished, "outbox.relay"), one(finished, "deliveries.task")
    assert relay.kind == SpanKind.PRODUCER
    assert relay.attributes["switchyard.outbox"] == "delivery"
    assert relay.attributes["messaging.batch.message_count"] == 1
    assert parent_of(relay) == request.context.span_id
    assert parent_of(task) == relay.context.span_id
    assert not task.links


def test_relayed_outside_the_request_the_task_joins_the_request_linking_the_relay(
    spans, api, fake_provider, django_capture_on_commit_callbacks
):
    """As when the dispatcher's relay queues it: the task continues the stored trace."""
    trello_customer_at(fake_provider.url)
    with django_capture_on_commit_callbacks(execute=True):  # runs after the request has ended
        api_proceed(api)
    finished = spans.get_finished_spans()
    request = next(span for span in finished if span.kind == SpanKind.SERVER)
    relay, task = one(finished, "outbox.relay"), one(finished, "deliveries.task")
    assert relay.parent is None
    assert parent_of(task) == request.context.span_id
    assert [link.context.span_id for link in task.links] == [relay.context.span_id]
    assert parent_of(one(finished, "delivery.attempt")) == task.context.span_id


def test_a_callers_traceparent_is_continued(spans, api, fake_provider):
    trello_customer_at(fake_provider.url)
    delivery_id = api_proceed(api, HTTP_TRACEPARENT=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    delivery_send_batch([delivery_id])
    request = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert f"{request.context.trace_id:032x}" == CALLER_TRACE
    assert f"{parent_of(request):016x}" == CALLER_SPAN
    stored = Delivery.objects.get(pk=delivery_id).trace_parent
    assert stored.split("-")[1] == CALLER_TRACE
    [sent] = fake_provider.journal("/trello/1/cards/")
    assert CALLER_TRACE in {k.lower(): v for k, v in sent["headers"].items()}["traceparent"]


def test_a_caller_flagging_its_trace_unsampled_cannot_switch_ours_off(spans, api, fake_provider):
    trello_customer_at(fake_provider.url)
    delivery_id = api_proceed(api, HTTP_TRACEPARENT=f"00-{CALLER_TRACE}-{CALLER_SPAN}-00")
    delivery_send_batch([delivery_id])
    finished = spans.get_finished_spans()
    names = {span.name for span in finished}
    assert {"deliveries.task", "delivery.attempt"} <= names
    assert any(span.kind == SpanKind.SERVER for span in finished)
    assert any(span.kind == SpanKind.CLIENT for span in finished)
    # Still the caller's trace, now sampled by us.
    assert {f"{span.context.trace_id:032x}" for span in finished} == {CALLER_TRACE}


def test_a_local_unsampled_parent_is_still_followed():
    parent = SpanContext(int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), is_remote=False)
    provider = tracing.tracer_provider({})
    with provider.get_tracer("t").start_as_current_span(
        "child", context=trace.set_span_in_context(NonRecordingSpan(parent))
    ) as child:
        assert not child.is_recording()


def test_a_sampler_chosen_in_the_environment_is_the_sdks(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    provider = tracing.tracer_provider({"OTEL_TRACES_SAMPLER": "always_off"})
    with provider.get_tracer("t").start_as_current_span("root") as root:
        assert not root.is_recording()


def test_a_webhook_path_names_the_span_provider_only_when_registered(spans, client):
    """Anyone may post here: the path's provider segment is not copied into a span as is."""
    hostile = "A" * 20_000 + "%0a%0dX-Evil:%201"
    for provider in (hostile, "trello"):
        response = client.post(
            f"/webhooks/{provider}/{uuid.uuid4()}/", data=b"{}", content_type="application/json"
        )
        assert response.status_code == 404
    receives = [s for s in spans.get_finished_spans() if s.name == "webhooks.receive"]
    assert [s.attributes["switchyard.provider"] for s in receives] == ["_unknown", "trello"]


def test_attribute_values_are_cut_to_a_bound(spans):
    with tracing.span("x", attributes={"long": "v" * 100_000}):
        pass
    [span] = spans.get_finished_spans()
    assert span.attributes["long"] == "v" * tracing.MAX_ATTRIBUTE_LENGTH


def test_a_batch_of_two_requests_links_and_each_attempt_stays_in_its_trace(
    spans, api, fake_provider
):
    trello_customer_at(fake_provider.url)
    ids = [api_proceed(api), api_proceed(api)]
    delivery_send_batch(ids)
    finished = spans.get_finished_spans()
    requests = [span for span in finished if span.kind == SpanKind.SERVER]
    task = one(finished, "deliveries.task")
    attempts = [span for span in finished if span.name == "delivery.attempt"]
    assert len(requests) == len(attempts) == 2
    # The task belongs to neither request: it links both.
    assert task.parent is None
    assert {link.context.span_id for link in task.links} == {r.context.span_id for r in requests}
    for request, attempt in zip(requests, attempts, strict=True):
        assert parent_of(attempt) == request.context.span_id
        assert attempt.context.trace_id == request.context.trace_id
        assert [link.context.span_id for link in attempt.links] == [task.context.span_id]


def test_inbound_receive_process_and_subscriber_call(
    spans, make_endpoint, post_webhook, subscriber_app
):
    subscription_create(url=subscriber_app.url, event_types=["trello.*"], allow_private=True)
    assert post_webhook(make_endpoint("trello")).status_code == 202

    finished = spans.get_finished_spans()
    request = next(span for span in finished if span.kind == SpanKind.SERVER)
    receive, process = one(finished, "webhooks.receive"), one(finished, "webhooks.process")
    assert parent_of(receive) == request.context.span_id
    assert receive.attributes["switchyard.provider"] == "trello"
    assert receive.attributes["switchyard.duplicate"] is False
    event_id = receive.attributes["switchyard.event_id"]
    assert process.attributes["switchyard.event_id"] == event_id
    # The fan-out delivery continues the processing's trace up to the subscriber.
    attempt = one(finished, "delivery.attempt")
    call = next(span for span in finished if span.kind == SpanKind.CLIENT)
    assert attempt.context.trace_id == process.context.trace_id
    assert parent_of(call) == attempt.context.span_id
    [(headers, _)] = subscriber_app.requests
    headers = {name.lower(): value for name, value in headers.items()}
    assert headers["traceparent"] == traceparent_of(call)


def test_processing_joins_the_trace_of_the_receipt(spans, make_endpoint, post_webhook):
    """The relay pass runs after the request, in a trace of its own; the processing it queued
    continues the receipt's trace (InboundEvent.trace_parent) and links to the relay's."""
    assert post_webhook(make_endpoint("trello")).status_code == 202
    finished = spans.get_finished_spans()
    receive, process = one(finished, "webhooks.receive"), one(finished, "webhooks.process")
    relay = one(finished, "outbox.relay")
    assert relay.context.trace_id != receive.context.trace_id
    assert process.context.trace_id == receive.context.trace_id
    assert parent_of(process) == receive.context.span_id
    assert [link.context.span_id for link in process.links] == [relay.context.span_id]
    stored = InboundEvent.objects.get(pk=receive.attributes["switchyard.event_id"])
    assert stored.trace_parent.split("-")[1] == f"{receive.context.trace_id:032x}"


def test_off_no_trace_is_stored_with_an_inbound_event(tracing_off, make_endpoint, post_webhook):
    assert post_webhook(make_endpoint("trello")).status_code == 202
    assert InboundEvent.objects.get().trace_parent is None


def test_a_refused_signature_fails_the_receive_span_without_its_message(
    spans, make_endpoint, post_webhook
):
    endpoint = make_endpoint("trello")
    assert post_webhook(endpoint, secret="not-" + SECRETS["trello"]).status_code == 401
    receive = one(spans.get_finished_spans(), "webhooks.receive")
    assert receive.status.status_code == StatusCode.ERROR
    assert receive.status.description is None
    assert receive.attributes["error.type"] == "SignatureRejected"
    assert not receive.events


def test_off_no_spans_no_header_nothing_stored(spans, api, fake_provider):
    tracing.tracing_install(None)
    with pytest.raises(MiddlewareNotUsed):
        TracingMiddleware(lambda request: None)
    trello_customer_at(fake_provider.url)
    delivery_id = api_proceed(api)
    assert delivery_send_batch([delivery_id]) == {delivery_id: "succeeded"}
    assert spans.get_finished_spans() == ()
    assert Delivery.objects.get(pk=delivery_id).trace_parent is None
    [sent] = fake_provider.journal("/trello/1/cards/")
    assert "traceparent" not in {name.lower() for name in sent["headers"]}


def test_off_the_span_helpers_do_nothing(tracing_off):
    with tracing.span("x") as span:
        assert span is None
    assert tracing.traceparent() is None
    tracing.annotate(None, {"a": 1})


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "switchyard-eu"}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, []),
    ],
)
def test_which_variables_turn_tracing_on(environ, names):
    assert tracing.exporter_names(environ) == names


def test_configure_installs_the_named_exporter(monkeypatch, tracing_off):
    installed = []
    monkeypatch.setattr(tracing.trace, "set_tracer_provider", installed.append)
    assert tracing.tracing_configure({"OTEL_TRACES_EXPORTER": "console"})
    [provider] = installed
    assert provider.resource.attributes["service.name"] == "switchyard"
    assert tracing.enabled()
    provider.shutdown()


def test_configure_without_the_exporter_package_stays_off(caplog, tracing_off):
    assert not tracing.tracing_configure({"OTEL_TRACES_EXPORTER": "no_such_exporter"})
    assert not tracing.enabled()
    assert "tracing.exporter_unavailable exporter=no_such_exporter" in caplog.text


def test_configure_off_by_default(tracing_off):
    assert not tracing.tracing_configure({})
    assert not tracing.enabled()


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_real_processes_configured_from_the_environment_share_one_trace(
    django_db_setup, tmp_path, fake_provider
):
    """gunicorn and the worker cluster (its tasks in forked children) turn tracing on from
    OTEL_TRACES_EXPORTER; the request's trace reaches the worker and the provider."""
    stack = ProcessStack.on_test_database(
        tmp_path, OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="100"
    )
    trello_customer_at(fake_provider.url)
    session = api_session("tracing")

    def spans_of(name):
        return set(CONSOLE_SPAN.findall(stack.output(name)))

    try:
        stack.start_platform()
        delivery_id = proceed(stack, session)
        assert wait_finished(stack, session, delivery_id)["status"] == "succeeded"
        [sent] = fake_provider.journal("/trello/1/cards/")
        headers = {name.lower(): value for name, value in sent["headers"].items()}
        trace_id = headers["traceparent"].split("-")[1]
        expected = {("deliveries.task", trace_id), ("delivery.attempt", trace_id)}
        stack.wait_for(lambda: expected <= spans_of("worker"), what="the worker's spans")
        stack.wait_for(
            lambda: ("POST api/v1/deliveries/", trace_id) in spans_of("web"), what="web's span"
        )
    finally:
        session.close()
        stack.stop()
