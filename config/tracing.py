"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables turn it on (README,
Tracing). ``tracing_configure`` reads them once per process (from settings); the hooks call
``span``, ``client_span``, ``traceparent`` and ``annotate``, each a flag check and nothing more
while tracing is off.

Spans are written here rather than by the requests and Django instrumentation packages: those
record the full URL, query string included, and Trello's key and token (GA4's api_secret) travel
in the query string. Span attributes carry ids, provider, action and status codes only; an
exception is recorded by its class name, never its message (it may quote a URL or an answer).

Context crosses the queue as a W3C ``traceparent`` (the propagator's header value): stored with
a delivery when it is accepted (``Delivery.trace_parent``), continued by the worker's spans."""

import logging
import os
from collections.abc import Iterable, Mapping
from contextlib import contextmanager, nullcontext
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = (
    "SpanKind",
    "annotate",
    "client_span",
    "enabled",
    "exporter_names",
    "http_status",
    "relay_span",
    "server_span_finish",
    "span",
    "traceparent",
    "tracer_provider",
    "tracing_configure",
    "tracing_install",
)

logger = logging.getLogger(__name__)

SERVICE = "switchyard"
TRACEPARENT = "traceparent"
EXPORTER_GROUP = "opentelemetry_traces_exporter"
# Methods a span may be named after; others are "_OTHER" (a client picks them, names stay few).
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# Longer attribute values are cut: whatever a caller manages to put in one stays small.
MAX_ATTRIBUTE_LENGTH = 256

# Only traceparent and tracestate, never baggage: a caller's baggage is not ours to forward to
# providers and subscribers.
_PROPAGATOR = TraceContextTextMapPropagator()
_NOOP = nullcontext()
_tracer: trace.Tracer | None = None


def enabled() -> bool:
    return _tracer is not None


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters the variables ask for; none means tracing stays off. OTEL_TRACES_EXPORTER
    names them (comma-separated, "none" for none); an OTLP endpoint alone means ``otlp``.
    Unlike the SDK's default (``otlp``), nothing set means no tracing."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [name for name in names if name]
    if not names and (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    return [name for name in names if name != "none"]


def _exporter(name: str, environ: Mapping[str, str]):
    """The exporter an installed package registers under ``name`` (the SDK's entry points)."""
    if name == "otlp":
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
    found = list(entry_points(group=EXPORTER_GROUP, name=name))
    if not found:
        raise LookupError(name)
    return found[0].load()()


def tracing_configure(environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on if the variables ask for it (once per process; django-q2's forked workers
    inherit it, the SDK restarts its export thread after a fork). Returns whether it is on. An
    exporter that is not installed is logged and left out: tracing never stops a process."""
    environ = os.environ if environ is None else environ
    processors = []
    for name in exporter_names(environ):
        try:
            processors.append(BatchSpanProcessor(_exporter(name, environ)))
        except Exception as exc:
            # The class only: a message may quote OTEL_EXPORTER_OTLP_HEADERS (an API key).
            logger.error(
                "tracing.exporter_unavailable exporter=%s error=%s (install switchyard[tracing] "
                "for OTLP)",
                name,
                exc.__class__.__name__,
            )
    if not processors:
        return False
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: SERVICE}))
    provider = tracer_provider(environ, resource=resource)
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)  # global too, for any library instrumented itself
    tracing_install(provider)
    return True


def tracer_provider(
    environ: Mapping[str, str], *, resource: Resource | None = None
) -> TracerProvider:
    """A provider with our sampler and limits. Unless OTEL_TRACES_SAMPLER chooses (the SDK then
    reads it), every trace is recorded: a caller's traceparent flagged not-sampled still gives
    the trace id but cannot switch our spans off; a parent in this process is still followed."""
    sampler = None
    if not environ.get("OTEL_TRACES_SAMPLER"):
        sampler = ParentBased(root=ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)
    return TracerProvider(
        resource=resource,
        sampler=sampler,
        span_limits=SpanLimits(max_attribute_length=MAX_ATTRIBUTE_LENGTH),
    )


def tracing_install(provider: TracerProvider | None) -> None:
    """Trace to ``provider`` from now on, or stop tracing (None). Tests install one with an
    in-memory exporter."""
    global _tracer
    _tracer = provider.get_tracer(SERVICE) if provider is not None else None


# --- spans ----------------------------------------------------------------------------------


def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parents: Iterable[str | None] = (),
    attributes: Mapping | None = None,
    start_time: int | None = None,
):
    """A context manager around a span (as the current span), or a no-op while tracing is off;
    it yields the span, or None when off.

    ``parents``: traceparent values the work continues (stored with a delivery, sent by a
    caller). One trace among them, other than the current one: the span joins it, linked to the
    current span. Several: the span stays where it is, linked to each. ``start_time``: ns since
    the epoch, for a span whose parents are only known after its work began."""
    if _tracer is None:
        return _NOOP
    return _span(name, kind, parents, attributes, start_time)


@contextmanager
def _span(name, kind, parents, attributes, start_time):
    parent, links = _parentage(parents)
    with _tracer.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        links=links,
        start_time=start_time,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except Exception as exc:
            current.set_attribute("error.type", exc.__class__.__qualname__)
            current.set_status(Status(StatusCode.ERROR))
            raise


def _parentage(traceparents: Iterable[str | None]):
    """(context to start the span in, or None for the current one; links)."""
    current = trace.get_current_span().get_span_context()
    remote: dict[int, SpanContext] = {}
    for value in traceparents:
        if value and (context := _span_context(value)) is not None:
            remote.setdefault(context.trace_id, context)
    others = [
        c for c in remote.values() if not (current.is_valid and c.trace_id == current.trace_id)
    ]
    if len(remote) == 1 and others:
        links = [Link(current)] if current.is_valid else []
        return trace.set_span_in_context(NonRecordingSpan(others[0])), links
    return None, [Link(context) for context in others]


def _span_context(value: str) -> SpanContext | None:
    context = trace.get_current_span(_PROPAGATOR.extract({TRACEPARENT: value}))
    span_context = context.get_span_context()
    return span_context if span_context.is_valid else None


def relay_span(outbox: str, count: int):
    """The span of queuing ``count`` rows of ``outbox`` on the broker (a producer's); its
    attributes are built only while tracing is on, as it runs within every API accept."""
    if _tracer is None:
        return _NOOP
    attributes = {"switchyard.outbox": outbox, "messaging.batch.message_count": count}
    return _span("outbox.relay", SpanKind.PRODUCER, (), attributes, None)


def annotate(current, attributes: Mapping) -> None:
    """Add attributes to ``current`` (what ``span`` yielded; None while tracing is off)."""
    if current is not None:
        current.set_attributes(attributes)


def traceparent() -> str | None:
    """The current span as a W3C traceparent, to store with queued work; None while off."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


# --- HTTP -----------------------------------------------------------------------------------


def _method(method: str | None) -> str:
    method = (method or "").upper()
    return method if method in HTTP_METHODS else "_OTHER"


def client_span(request, *, provider: str = ""):
    """The client span of one outbound call (a ``requests.PreparedRequest``), whose context goes
    out in the request's ``traceparent`` header. Host and port, never the URL: query strings
    carry credentials."""
    if _tracer is None:
        return _NOOP
    return _client_span(request, provider)


@contextmanager
def _client_span(request, provider: str):
    parts = urlsplit(request.url)
    attributes = {
        "http.request.method": _method(request.method),
        "server.address": parts.hostname or "",
        "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        "switchyard.provider": provider,
    }
    with span(_method(request.method), kind=SpanKind.CLIENT, attributes=attributes) as current:
        _PROPAGATOR.inject(request.headers)
        yield current


def server_span_finish(current, *, method: str, route: str, status: int, request_id) -> None:
    """Name the server span of a request after its route (``/api/v1/deliveries/<int:pk>/``,
    not the path: ids stay out of names) and record the answer."""
    if current is None:
        return
    name = f"{_method(method)} {route}" if route else _method(method)
    current.update_name(name)
    attributes = {"http.response.status_code": status, "http.route": route}
    if request_id:
        attributes["switchyard.request_id"] = request_id
    current.set_attributes(attributes)
    if status >= 500:
        current.set_status(Status(StatusCode.ERROR))


def http_status(current, status: int) -> None:
    """Record a client call's answer; a 4xx/5xx marks the client span failed."""
    if current is not None:
        current.set_attribute("http.response.status_code", status)
        if status >= 400:
            current.set_status(Status(StatusCode.ERROR))
