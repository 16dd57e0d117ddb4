"""Processing: normalise claimed events and fan each out to the subscriptions it matches, a batch
of events per claim and transaction, paced so that the receivers keep their cores."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import structlog
from django.db import transaction
from django.utils import timezone

from config import tracing
from config.db import update_fields_many
from config.json_limits import nul_escaped
from config.metrics_recorded import INBOUND_PROCESSING_LATENCY
from integrations.deliveries.retry import RetryPolicy, decide_retry
from integrations.deliveries.services import delivery_create
from integrations.outbox import transaction_spoilt, write_isolated
from integrations.providers.standard_webhooks import StandardWebhooksProvider
from integrations.providers.types import PayloadInvalid
from integrations.registry import get_provider
from webhooks import selectors
from webhooks.models import InboundEvent, Subscription
from webhooks.services.relay import INBOUND

__all__ = ("OUTBOUND_ACTION", "inbound_events_process")

logger = structlog.stdlib.get_logger(__name__)

# Share of its time a processing task works; it pauses for the rest (see _Pace), leaving the
# cores to the receivers: their tail latency is what a burst would otherwise raise.
PROCESS_DUTY = 0.25
PACE_EVERY = 20
# The delivery engine operation that signs and sends one event to one subscription.
OUTBOUND_ACTION = f"{StandardWebhooksProvider.key}.send"
Status = InboundEvent.Status

# A NUL character in a JSON string as json.dumps writes it: "\u0000" not itself escaped.
NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _storable(envelope: dict) -> None:
    """Refuse, as a malformed payload, an envelope that the database cannot store: NaN or
    Infinity (not JSON: SQLite's JSON check and PostgreSQL's jsonb refuse them) and the NUL
    character (jsonb refuses ``\\u0000``). Found here, the same on every backend, instead of by
    a failed write."""
    try:
        text = json.dumps(envelope, allow_nan=False)
    except ValueError as exc:
        raise PayloadInvalid(f"The event cannot be stored: {exc}.") from None
    if "\\u0000" in text and NUL_ESCAPE.search(text):
        raise PayloadInvalid("The event cannot be stored: it contains a NUL character (\\u0000).")


def _envelope(event: InboundEvent, normalised, customer: str) -> dict:
    envelope = {
        "id": f"evt_{event.key.hex}",
        "type": normalised.type,
        "occurred_at": normalised.occurred_at,
        "customer": customer,
        "provider": event.provider,
        "data": normalised.data,
    }
    _storable(envelope)
    return envelope


def _fan_out(event: InboundEvent, customer: str, subscriptions: list[Subscription]) -> int:
    """One outbound delivery per matching subscription, written with the event's outcome (set
    on it before) under one savepoint: a failure of either leaves neither behind (a retry does
    not send twice) and the rest of the batch goes on. Returns how many; an event with none is
    written with the batch instead (``_settle``)."""
    matching = [s for s in subscriptions if selectors.event_type_matches(s.event_types, event.type)]
    if matching:
        with transaction.atomic():
            for subscription in matching:
                delivery_create(
                    api_key=None,
                    customer=customer,
                    action=OUTBOUND_ACTION,
                    input={"subscription": subscription.pk, "event": event.pk},
                    internal=True,
                )
            _write([event])
    return len(matching)


def _process(
    event: InboundEvent, customer: str, subscriptions: list[Subscription], loaded: list
) -> int:
    """Normalise one claimed event of ``customer`` (its slug) and fan it out. Its outcome is set
    on the instance: written with its deliveries if it has some, else with the batch. Returns
    how many deliveries it fanned out to. ``loaded``: its outcome as claimed (``_outcome``),
    which a failure restores before recording itself."""
    try:
        normalised = get_provider(event.provider).normalise(bytes(event.body), event.headers)
        if normalised is None:
            event.status, event.processed_at, event.error = Status.IGNORED, timezone.now(), ""
            return 0
        event.envelope = _envelope(event, normalised, customer)
        event.type, event.status = normalised.type[:200], Status.PROCESSED
        event.processed_at, event.error = timezone.now(), ""
        return _fan_out(event, customer, subscriptions)
    except Exception as exc:
        if transaction_spoilt():
            raise
        _failed(event, loaded, exc)
        return 0


def _outcome(event: InboundEvent) -> list:
    return [getattr(event, name) for name in OUTCOME_FIELDS]


def _failed(event: InboundEvent, loaded: list, exc: Exception) -> None:
    """A failed attempt changes nothing but its outcome: back to the row as claimed, then
    failed (or dead)."""
    for name, value in zip(OUTCOME_FIELDS, loaded, strict=True):
        setattr(event, name, value)
    _fail(event, exc)


def _fail(event: InboundEvent, exc: Exception) -> None:
    """Retry with the delivery engine's policy; a malformed payload never gets better."""
    if isinstance(exc, PayloadInvalid):
        outcome, error = "terminal", f"Malformed payload: {exc}"
    else:
        outcome, error = "retryable", f"{exc.__class__.__name__}: {exc}"
        logger.exception("webhooks.process_failed", event_id=event.pk, provider=event.provider)
    decision = decide_retry(
        policy=RetryPolicy(),
        attempt=event.attempts,
        attempt_limit=event.attempt_limit,
        outcome=outcome,
    )
    now = timezone.now()
    if decision.retry:
        event.status = Status.FAILED
        event.next_attempt_at = now + timedelta(seconds=decision.delay_seconds)
    else:
        event.status, event.processed_at = Status.DEAD, now
        error = f"{error} ({decision.reason})"
    # PostgreSQL stores no NUL in text, and the error may quote the value that had one.
    event.error = nul_escaped(error)


def _write(events: list[InboundEvent]) -> None:
    """Write each event's outcome with one statement for all rows (``update_fields_many``)."""
    update_fields_many(events, list(SETTLED_FIELDS))


def _settle(events: list[InboundEvent], loaded: dict[int, list]) -> list[InboundEvent]:
    """Write the outcomes of ``events`` together; one the database refuses (a value it cannot
    store) is failed alone (``write_isolated``). Returns those written."""
    return write_isolated(
        events,
        _write,
        lambda event, exc: _failed(event, loaded[event.pk], exc),
        name="inboundevent",
    )


class _Pace:
    """Spreads a batch over time: before each further PACE_EVERY events (never after the last),
    pause so that the task works at most PROCESS_DUTY of its time. A relay pass hands over a
    burst of events at once; processed flat out, they took every core from the receivers for a
    moment and set the ingest tail latency (bench/README.md, Ingest). At 0.2 ms of work per
    event (a plain event) a worker still processes more than 1,000 events a second, so
    processing keeps up with ingest instead of lagging behind it."""

    def __init__(self):
        self.count, self.since = 0, time.perf_counter()

    def before_next(self) -> None:
        if self.count and not self.count % PACE_EVERY:
            worked = time.perf_counter() - self.since
            time.sleep(worked * (1 - PROCESS_DUTY) / PROCESS_DUTY)
            self.since = time.perf_counter()
        self.count += 1


SETTLED_FIELDS = (
    "status",
    "type",
    "envelope",
    "error",
    "next_attempt_at",
    "processed_at",
    "lease_token",
    "lease_until",
)
# What an attempt decides (the lease is cleared whatever it decides).
OUTCOME_FIELDS = tuple(name for name in SETTLED_FIELDS if not name.startswith("lease_"))
# What processing reads, and what it settles without assigning (a deferred field would cost a
# query per event); the rest of the row stays in the database.
PROCESSED_FIELDS = (
    "key",
    "endpoint_id",
    "provider",
    "body",
    "headers",
    "attempts",
    "attempt_limit",
    "received_at",  # the processing latency metric
    "trace_parent",  # the processing's span joins the receipt's trace
    *OUTCOME_FIELDS,
)


def inbound_events_process(*, event_ids: list[int]) -> dict[int, str]:
    """Normalise stored events and fan them out, as one claim and one transaction: the claimed
    rows are locked, each event is processed under a savepoint with its deliveries and its row
    (if it has deliveries), and the others are settled together by one pipelined UPDATE, so a
    batch costs two commits and no query per event (bar its deliveries). One event that cannot
    be written (a value the database refuses, an unforeseen error) is rolled back alone and
    failed; the rest of the batch commits. Returns the new status of each event processed;
    those not due, leased by another worker, out of attempts or finished are left out. If the
    transaction fails (the database gone) nothing is settled: the leases expire and the relay
    queues the events again."""
    token = INBOUND.claim(event_ids)
    # The lease is short and renewed while the batch runs: a dead worker's events come back
    # within a lease, a slow batch keeps its own.
    with INBOUND.heartbeat(event_ids, token):
        claimed, fanned = _process_claimed(event_ids, token)
    for event in claimed:
        if event.processed_at and event.status in (Status.PROCESSED, Status.IGNORED):
            INBOUND_PROCESSING_LATENCY.labels(event.provider).observe(
                (event.processed_at - event.received_at).total_seconds()
            )
        if event.status == Status.PROCESSED:
            logger.info(
                "webhooks.processed",
                event_id=event.pk,
                provider=event.provider,
                type=event.type,
                fanned_out=fanned[event.pk],
            )
        elif event.status == Status.IGNORED:
            logger.info("webhooks.ignored", event_id=event.pk, provider=event.provider)
    return {event.pk: event.status for event in claimed}


def _span_ids(event: InboundEvent) -> dict:
    return {"switchyard.event_id": event.pk, "switchyard.provider": event.provider}


def _process_claimed(event_ids: list[int], token) -> tuple[list[InboundEvent], dict[int, int]]:
    """The batch transaction of ``inbound_events_process``: the events settled, and how many
    deliveries each fanned out to."""
    with transaction.atomic():
        mine = InboundEvent.objects.filter(pk__in=event_ids, lease_token=token)
        # Each endpoint's customer once per batch, not joined and built into every row.
        customers = {
            endpoint_id: (customer_id, slug)
            for endpoint_id, customer_id, slug in mine.values_list(
                "endpoint_id", "endpoint__customer_id", "endpoint__customer__slug"
            ).distinct()
        }
        receiving = selectors.subscriptions_receiving(
            customer_ids={customer_id for customer_id, _ in customers.values()}
        )
        locked = mine.only(*PROCESSED_FIELDS).select_for_update().order_by("pk")
        claimed, fanned, loaded, pace = [], {}, {}, _Pace()
        # Read and locked a chunk at a time (a server-side cursor on PostgreSQL), so that loading
        # the rows is paced with their processing: loaded at once, 200 rows with their endpoint
        # and customer had taken a worker more CPU than processing them, in a burst.
        for event in locked.iterator(chunk_size=PACE_EVERY):
            pace.before_next()
            event.lease_token = event.lease_until = None
            loaded[event.pk] = _outcome(event)
            customer_id, customer = customers[event.endpoint_id]
            # The fan-out deliveries' log lines name the event they send; the processing joins
            # the receipt's trace, and the fan-out deliveries join the processing's.
            with (
                structlog.contextvars.bound_contextvars(event_id=event.pk, customer=customer),
                tracing.span(
                    "webhooks.process", parents=[event.trace_parent], attributes=_span_ids(event)
                ),
            ):
                fanned[event.pk] = _process(
                    event, customer, receiving[customer_id], loaded[event.pk]
                )
            claimed.append(event)
        # Those fanned out were written with their deliveries.
        settled = {event.pk for event in claimed if fanned[event.pk]}
        settled.update(e.pk for e in _settle([e for e in claimed if not fanned[e.pk]], loaded))
    return [event for event in claimed if event.pk in settled], fanned
