"""Writes of the webhooks app: receive (verify, de-duplicate, persist), process (normalise, fan
out), replay, and subscriptions with rotatable signing secrets.

An accepted webhook is committed before it is acknowledged; everything after the commit works
from the stored row. The row is the outbox: the receiver queues nothing (a broker write per
request would double the cost of accepting one), the dispatcher relay queues due events in
batches on every pass, and leases guard the processing."""

from __future__ import annotations

import base64
import logging
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from config.db import insert_one, update_fields_many
from credentials.crypto import keyring
from credentials.models import Credential
from credentials.services import credential_version_mark_used
from customers.models import Customer
from integrations import egress
from integrations.constants import SECRET_HEADERS
from integrations.deliveries.services import delivery_create
from integrations.outbox import enqueue_batches, enqueued_until
from integrations.providers.base import (
    CredentialPurpose,
    PayloadInvalid,
    SignatureInvalid,
    parse_json_body,
)
from integrations.registry import ProviderNotRegistered, get_provider
from integrations.retry import RetryPolicy, decide_retry
from webhooks import selectors
from webhooks.models import InboundEvent, Subscription, SubscriptionSecret, WebhookEndpoint

__all__ = (
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "OUTBOUND_ACTION",
    "EndpointNotFound",
    "PayloadRejected",
    "SignatureRejected",
    "endpoint_create",
    "inbound_events_process",
    "inbound_events_relay_due",
    "inbound_events_replay",
    "inbound_webhook_receive",
    "subscription_create",
    "subscription_disable",
    "subscription_rotate_secret",
)

logger = logging.getLogger(__name__)

TASK_PATH = "webhooks.tasks.inbound_events_process"
# Events per task: one broker message, one task result and one claim, lock and settle for many
# events (the ORM broker's pusher and monitor cost about 12 ms per task); a relay pass takes at
# most SWITCHYARD_RELAY_BATCH (200) ids per query, so a larger batch would not form.
PROCESS_BATCH = 200
# Share of its time a processing task works; it pauses for the rest (see _Pace). A quarter beat
# a half in six of seven alternating bench/ingest.py pairs (p99 110 against 129 ms on average).
PROCESS_DUTY = 0.25
PACE_EVERY = 20
# The delivery engine operation that signs and sends one event to one subscription.
OUTBOUND_ACTION = "standard_webhooks.send"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # Svix-compatible secrets (webhook-platforms.md §6.1)
DEFAULT_GRACE_SECONDS = 24 * 3600
MAX_GRACE_SECONDS = 7 * 24 * 3600
CLAIM_TOLERANCE = timedelta(seconds=1)
BULK_CHUNK = 1000
EVENT_TYPE_PATTERN = re.compile(r"^(\*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*(\.\*)?)$")
Status = InboundEvent.Status
PENDING = (Status.RECEIVED, Status.FAILED)


class EndpointNotFound(Exception):
    pass


class SignatureRejected(Exception):
    """The message is the verifier's reason, never a secret."""


class PayloadRejected(Exception):
    pass


# --- endpoints ------------------------------------------------------------------------------


def endpoint_tolerance_check(*, provider: str, tolerance_seconds: int | None) -> None:
    """A timestamp tolerance only means something where the provider signs a timestamp (an
    unknown provider is left for ``endpoint_create`` to refuse)."""
    try:
        signs_timestamp = get_provider(provider).webhook_tolerance_seconds is not None
    except ProviderNotRegistered:
        return
    if tolerance_seconds is not None and not signs_timestamp:
        raise ValidationError(
            {
                "tolerance_seconds": f"Provider '{provider}' signs no timestamp; leave the "
                "tolerance empty."
            }
        )


def endpoint_create(
    *,
    customer: Customer,
    provider: str,
    credential: Credential,
    active: bool = True,
    tolerance_seconds: int | None = None,
) -> WebhookEndpoint:
    try:
        verifies = get_provider(provider).verifies_webhooks
    except ProviderNotRegistered as exc:
        raise ValidationError({"provider": str(exc)}) from None
    if not verifies:
        raise ValidationError({"provider": f"Provider '{provider}' does not send webhooks."})
    endpoint_tolerance_check(provider=provider, tolerance_seconds=tolerance_seconds)
    if (
        credential.provider != provider
        or credential.purpose != CredentialPurpose.WEBHOOK_SIGNING
        or credential.customer_id not in (None, customer.pk)
    ):
        raise ValidationError(
            {
                "credential": f"Credential {credential.pk} is not a {provider} webhook_signing "
                f"credential usable by customer '{customer.slug}'."
            }
        )
    return WebhookEndpoint.objects.create(
        customer=customer,
        provider=provider,
        credential=credential,
        active=active,
        tolerance_seconds=tolerance_seconds,
    )


# --- receiving ------------------------------------------------------------------------------


def _stored_headers(adapter, headers: Mapping[str, str]) -> dict[str, str]:
    """Only the headers the provider allows (``inbound_headers``: what processing and operators
    read); credentials, cookies and signatures have no use after verification, and a header
    not listed (``X-Auth-Token``…) may carry one."""
    allowed = {name.lower() for name in adapter.inbound_headers} - SECRET_HEADERS
    return {name: value for name, value in headers.items() if name.lower() in allowed}


def _enqueue(event_ids: list[int]) -> None:
    enqueue_batches(
        model=InboundEvent, task_path=TASK_PATH, ids=list(event_ids), batch_size=PROCESS_BATCH
    )


def _reject(endpoint: WebhookEndpoint, reason: str) -> SignatureRejected:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        rejected_signatures=F("rejected_signatures") + 1, last_rejected_at=timezone.now()
    )
    logger.warning(
        "webhooks.signature_rejected endpoint=%s provider=%s reason=%s",
        endpoint.public_id,
        endpoint.provider,
        reason,
    )
    return SignatureRejected(reason)


# Named, so the page still shows the request; "secrets"/"secret" also cover the frames below
# (a verifier without a decorator of its own).
@sensitive_variables("receiving", "secrets", "secret")
def inbound_webhook_receive(
    *,
    provider: str,
    endpoint_id,
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    remote_ip: str | None,
) -> tuple[InboundEvent, bool]:
    """Verify and store one webhook; returns (event, created). ``created`` is False for a
    duplicate of an event already stored, which is not processed again.

    Raises ``EndpointNotFound``, ``SignatureRejected`` (counted on the endpoint) or
    ``PayloadRejected``; database errors propagate so the provider is told to retry."""
    adapter = get_provider(provider)
    for refresh in (False, True):
        receiving = selectors.endpoint_receiving(
            provider=provider, endpoint_id=endpoint_id, refresh=refresh
        )
        if receiving is None:
            raise EndpointNotFound
        try:
            version = adapter.verify(
                body,
                headers,
                list(receiving.secrets),
                url,
                tolerance=receiving.endpoint.tolerance_seconds,
            )
            break
        except SignatureInvalid as exc:
            # A refusal against the cached copy is checked again against the database: the
            # secret may have been rotated in the last few seconds.
            if receiving.cached:
                continue
            raise _reject(receiving.endpoint, str(exc)) from None
    endpoint = receiving.endpoint
    try:
        # Every verifying provider sends JSON objects; refusing anything else here keeps a body
        # that can never be processed out of the event log.
        parse_json_body(body)
        external_id = adapter.event_id(body, headers)[:255]
    except PayloadInvalid as exc:
        raise PayloadRejected(str(exc)) from None
    credential_version_mark_used(credential=endpoint.credential, version=version)
    # In autocommit the INSERT commits on its own, one round trip instead of BEGIN, INSERT,
    # COMMIT; inside a caller's transaction a savepoint keeps a duplicate from spoiling it.
    nested = transaction.get_connection().in_atomic_block
    # Due at once with no task: the next relay pass queues it.
    event = InboundEvent(
        endpoint=endpoint,
        provider=provider,
        external_id=external_id,
        body=body,
        headers=_stored_headers(adapter, headers),
        remote_ip=remote_ip,
        signature_version=version,
        attempt_limit=RetryPolicy().max_attempts,
        next_attempt_at=timezone.now(),
    )
    try:
        with transaction.atomic() if nested else nullcontext():
            insert_one(event)
    except IntegrityError:
        existing = InboundEvent.objects.filter(endpoint=endpoint, external_id=external_id).first()
        if existing is None:
            raise
        logger.info("webhooks.duplicate endpoint=%s external_id=%s", endpoint.pk, external_id)
        return existing, False
    logger.info(
        "webhooks.received event=%s endpoint=%s provider=%s signature_version=%s",
        event.pk,
        endpoint.pk,
        provider,
        version,
    )
    return event, True


# --- processing -----------------------------------------------------------------------------


def _claim(event_ids: list[int]) -> uuid.UUID:
    """Take one lease on those of ``event_ids`` that are due, committed at once so that the
    attempt counts even if the worker dies (a poison event still dead-letters); an expired
    lease (dead worker) may be taken over. Returns the lease token."""
    now = timezone.now()
    token = uuid.uuid4()
    InboundEvent.objects.filter(
        pk__in=event_ids, status__in=PENDING, next_attempt_at__lte=now + CLAIM_TOLERANCE
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)).update(
        lease_token=token,
        lease_until=now + timedelta(seconds=settings.SWITCHYARD_LEASE_SECONDS),
        attempts=F("attempts") + 1,
        enqueued_until=None,
    )
    return token


def _envelope(event: InboundEvent, normalised, customer: str) -> dict:
    return {
        "id": f"evt_{event.key.hex}",
        "type": normalised.type,
        "occurred_at": normalised.occurred_at,
        "customer": customer,
        "provider": event.provider,
        "data": normalised.data,
    }


def _fan_out(event: InboundEvent, customer: str, subscriptions: list[Subscription]) -> int:
    """One outbound delivery per matching subscription, under a savepoint: a failure leaves
    none behind (a retry does not send twice) and the rest of the batch goes on."""
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
    return len(matching)


def _process(event: InboundEvent, customer: str, subscriptions: list[Subscription]) -> int:
    """Normalise one claimed event of ``customer`` (its slug) and fan it out. Its outcome is set
    on the instance, saved with the batch; returns how many deliveries it fanned out to."""
    previous_type = event.type
    try:
        normalised = get_provider(event.provider).normalise(bytes(event.body), event.headers)
        if normalised is None:
            status, fanned = Status.IGNORED, 0
        else:
            event.type = normalised.type[:200]
            fanned = _fan_out(event, customer, subscriptions)
            status, event.envelope = Status.PROCESSED, _envelope(event, normalised, customer)
    except Exception as exc:
        event.type = previous_type  # a failed attempt changes nothing but its outcome
        _fail(event, exc)
        return 0
    event.status, event.processed_at, event.error = status, timezone.now(), ""
    return fanned


def _fail(event: InboundEvent, exc: Exception) -> None:
    """Retry with the delivery engine's policy; a malformed payload never gets better."""
    if isinstance(exc, PayloadInvalid):
        outcome, error = "terminal", f"Malformed payload: {exc}"
    else:
        outcome, error = "retryable", f"{exc.__class__.__name__}: {exc}"
        logger.exception("webhooks.process_failed event=%s", event.pk)
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
    event.error = error


def _settle(events: list[InboundEvent]) -> None:
    """Write each event's outcome with one statement for all rows (``update_fields_many``)."""
    update_fields_many(events, list(SETTLED_FIELDS))


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
    *(name for name in SETTLED_FIELDS if not name.startswith("lease_")),
)


def inbound_events_process(*, event_ids: list[int]) -> dict[int, str]:
    """Normalise stored events and fan them out, as one claim and one transaction: the claimed
    rows are locked, then settled together by one pipelined UPDATE, so a batch costs two commits and
    no query per event (bar its deliveries). Returns the new status of each event processed;
    those not due, leased by another worker or finished are left out. If the transaction fails
    (the database gone) nothing is settled: the leases expire and the relay queues the events
    again."""
    token = _claim(event_ids)
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
        claimed, fanned, pace = [], {}, _Pace()
        # Read and locked a chunk at a time (a server-side cursor on PostgreSQL), so that loading
        # the rows is paced with their processing: loaded at once, 200 rows with their endpoint
        # and customer had taken a worker more CPU than processing them, in a burst.
        for event in locked.iterator(chunk_size=PACE_EVERY):
            pace.before_next()
            customer_id, customer = customers[event.endpoint_id]
            fanned[event.pk] = _process(event, customer, receiving[customer_id])
            claimed.append(event)
        for event in claimed:
            event.lease_token = event.lease_until = None
        _settle(claimed)
    for event in claimed:
        if event.status == Status.PROCESSED:
            logger.info(
                "webhooks.processed event=%s type=%s fanned_out=%s",
                event.pk,
                event.type,
                fanned[event.pk],
            )
        elif event.status == Status.IGNORED:
            logger.info("webhooks.ignored event=%s", event.pk)
    return {event.pk: event.status for event in claimed}


def inbound_events_relay_due() -> int:
    """Dispatcher step, every pass: queue due events that have no task (just received, retries,
    lost messages, expired leases) in tasks of PROCESS_BATCH ids, keeping at most
    SWITCHYARD_RELAY_MAX_QUEUED events queued. Accepted events thus reach a worker within
    one dispatch interval."""
    now = timezone.now()
    queued_now = InboundEvent.objects.filter(status__in=PENDING, enqueued_until__gt=now).count()
    room = settings.SWITCHYARD_RELAY_MAX_QUEUED - queued_now
    queued = 0
    # Only what was due when the pass began: events arriving meanwhile wait for the next pass
    # and travel together, instead of trickling out as tasks of one or two ids.
    due = (
        InboundEvent.objects.filter(status__in=PENDING, next_attempt_at__lte=now)
        .filter(Q(enqueued_until__isnull=True) | Q(enqueued_until__lt=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    )
    while room > 0:
        limit = min(room, settings.SWITCHYARD_RELAY_BATCH)
        with transaction.atomic():
            ids = list(
                due.order_by("next_attempt_at")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:limit]
            )
            if not ids:
                break
            InboundEvent.objects.filter(pk__in=ids).update(enqueued_until=enqueued_until())
        _enqueue(ids)
        queued += len(ids)
        room -= len(ids)
        if len(ids) < limit:
            break
    return queued


def inbound_events_replay(*, queryset, enqueue: bool = True) -> int:
    """Process finished events again (dead letters after a fix, or processed ones to re-send),
    with a fresh retry budget; in chunks so any number fits in bounded memory."""
    finished = queryset.exclude(status__in=PENDING).order_by("pk")
    total, last_id = 0, 0
    while chunk := list(finished.filter(pk__gt=last_id).values_list("pk", flat=True)[:BULK_CHUNK]):
        last_id = chunk[-1]
        with transaction.atomic():
            total += (
                InboundEvent.objects.filter(pk__in=chunk)
                .exclude(status__in=PENDING)
                .update(
                    status=Status.RECEIVED,
                    attempt_limit=F("attempts") + RetryPolicy().max_attempts,
                    next_attempt_at=timezone.now(),
                    enqueued_until=enqueued_until() if enqueue else None,
                    processed_at=None,
                    error="",
                )
            )
            if enqueue:
                transaction.on_commit(lambda chunk=chunk: _enqueue(chunk))
        logger.info("webhooks.replayed count=%s", len(chunk))
    return total


# --- subscriptions --------------------------------------------------------------------------


@sensitive_variables()
def _new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@sensitive_variables()
def _secret_add(*, subscription: Subscription, version: int, secret: str) -> SubscriptionSecret:
    ring = keyring()
    key_id, ciphertext = ring.encrypt(
        secret.encode(), aad=selectors.secret_aad(subscription.pk, version)
    )
    return SubscriptionSecret.objects.create(
        subscription=subscription,
        version=version,
        key_id=key_id,
        ciphertext=ciphertext,
        hint=f"…{ring.fingerprint(secret.encode())[-4:]}",
    )


def _validate(*, url: str, event_types, allow_private: bool) -> None:
    errors = {}
    try:
        egress.destination_check(url, allow_private=allow_private)
    except egress.EgressRefused as exc:
        errors["url"] = str(exc)
        if "non-public" in errors["url"]:
            errors["url"] += " For an internal app, an admin may set allow_private."
    if not isinstance(event_types, list) or not event_types:
        errors["event_types"] = 'Give a non-empty list, e.g. ["*"] or ["trello.*"].'
    elif bad := [t for t in event_types if not EVENT_TYPE_PATTERN.match(str(t))]:
        errors["event_types"] = f"Invalid event type pattern: {bad[0]!r}."
    if errors:
        raise ValidationError(errors)


# Every local: the frames below see the secret under other names.
@sensitive_variables()
def subscription_create(
    *,
    url: str,
    event_types: list[str],
    allow_private: bool = False,
    customer: Customer | None = None,
) -> tuple[Subscription, str]:
    """Returns (subscription, secret); the secret is not retrievable afterwards."""
    _validate(url=url, event_types=event_types, allow_private=allow_private)
    secret = _new_secret()
    with transaction.atomic():
        subscription = Subscription.objects.create(
            url=url, event_types=event_types, allow_private=allow_private, customer=customer
        )
        _secret_add(subscription=subscription, version=1, secret=secret)
    logger.info("webhooks.subscription_created subscription=%s", subscription.pk)
    return subscription, secret


@sensitive_variables()
def subscription_rotate_secret(
    *, subscription: Subscription, grace_seconds: int = DEFAULT_GRACE_SECONDS
) -> str:
    """A new current secret; the old ones keep signing for ``grace_seconds`` (0 = stop now)."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValidationError({"grace_seconds": f"Between 0 and {MAX_GRACE_SECONDS} seconds."})
    secret = _new_secret()
    now = timezone.now()
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        versions = locked.secrets.all()
        latest = max((v.version for v in versions), default=0)
        grace_until = now + timedelta(seconds=grace_seconds)
        # A secret already expiring sooner keeps its earlier end; none is extended.
        versions.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=grace_until)).update(
            expires_at=grace_until
        )
        _secret_add(subscription=locked, version=latest + 1, secret=secret)
    logger.info(
        "webhooks.subscription_secret_rotated subscription=%s version=%s grace_seconds=%s",
        subscription.pk,
        latest + 1,
        grace_seconds,
    )
    return secret


def subscription_disable(*, subscription_id: int, reason: str) -> None:
    updated = Subscription.objects.filter(pk=subscription_id, active=True).update(
        active=False, disabled_at=timezone.now(), disabled_reason=reason[:200]
    )
    if updated:
        logger.warning(
            "webhooks.subscription_disabled subscription=%s reason=%s", subscription_id, reason
        )
