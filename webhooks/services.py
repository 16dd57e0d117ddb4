"""Writes of the webhooks app: receive (verify, de-duplicate, persist), process (normalise, fan
out), replay, and subscriptions with rotatable signing secrets.

An accepted webhook is committed before it is acknowledged; everything after the commit works
from the stored row. The row is the outbox (``INBOUND``, integrations/outbox, the mechanism
deliveries use too): the receiver queues nothing (a broker write per request would double the
cost of accepting one), the dispatcher relay queues due events in batches on every pass, and
leases guard the processing."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from config.db import insert_one, update_fields_many
from config.json_limits import nul_escaped
from credentials.models import Credential
from credentials.services import (
    credential_create_owned,
    credential_revoke,
    credential_rotate,
    credential_version_mark_used,
)
from customers.models import Customer
from integrations import egress
from integrations.deliveries.services import delivery_create
from integrations.outbox import Outbox, relay_due, transaction_spoilt, write_isolated
from integrations.providers.base import (
    CredentialPurpose,
    PayloadInvalid,
    SignatureInvalid,
    parse_json_body,
)
from integrations.registry import ProviderNotRegistered, get_provider
from integrations.retry import RetryPolicy, decide_retry
from webhooks import selectors
from webhooks.models import InboundEvent, Subscription, WebhookEndpoint

__all__ = (
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "OUTBOUND_ACTION",
    "EndpointNotFound",
    "SignatureRejected",
    "endpoint_create",
    "inbound_events_process",
    "inbound_events_recover_leases",
    "inbound_events_relay_due",
    "inbound_events_replay",
    "inbound_webhook_receive",
    "subscription_create",
    "subscription_deleted",
    "subscription_disable",
    "subscription_owner_sync",
    "subscription_rotate_secret",
)

logger = logging.getLogger(__name__)

# Events per task: one broker message, one task result and one claim, lock and settle for many
# events (the ORM broker's pusher and monitor cost about 12 ms per task); a relay pass takes at
# most SWITCHYARD_RELAY_BATCH (200) ids per query, so a larger batch would not form.
PROCESS_BATCH = 200
# Share of its time a processing task works; it pauses for the rest (see _Pace), leaving the
# cores to the receivers: their tail latency is what a burst would otherwise raise.
PROCESS_DUTY = 0.25
PACE_EVERY = 20
# The delivery engine operation that signs and sends one event to one subscription.
OUTBOUND_ACTION = "standard_webhooks.send"
SECRET_PREFIX = "whsec_"
SIGNING_PROVIDER = "standard_webhooks"
SECRET_BYTES = 24  # Svix-compatible secrets (webhook-platforms.md §6.1)
DEFAULT_GRACE_SECONDS = 24 * 3600
MAX_GRACE_SECONDS = 7 * 24 * 3600
EVENT_TYPE_PATTERN = re.compile(r"^(\*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*(\.\*)?)$")
Status = InboundEvent.Status
PENDING = (Status.RECEIVED, Status.FAILED)
# Not finished: waiting for a worker or held by one (a replay leaves these alone).
LIVE = (*PENDING, Status.PROCESSING)

INBOUND = Outbox(
    model=InboundEvent,
    task_path="webhooks.tasks.inbound_events_process",
    batch_size=PROCESS_BATCH,
    waiting=PENDING,
    claimed=Status.PROCESSING,
    dead=Status.DEAD,
    error_field="error",
    finished_field="processed_at",
    lost_error="Worker lost while processing (lease expired).",
)


class EndpointNotFound(Exception):
    pass


class SignatureRejected(Exception):
    """The message is the verifier's reason, never a secret."""


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

    Raises ``EndpointNotFound`` or ``SignatureRejected`` (counted on the endpoint); database
    errors propagate so the provider is told to retry. A correctly signed body that cannot be
    processed (not a JSON object, too deep, ``NaN``, a NUL character, no event id) is stored
    as it came and dead-lettered at once with the reason: it is acknowledged like any other,
    since a provider would retry a refused one for days or disable the endpoint."""
    try:
        adapter = get_provider(provider)
    except ProviderNotRegistered:
        raise EndpointNotFound from None
    endpoint, version = _verified(adapter, provider, endpoint_id, body, headers, url)
    external_id, malformed = _identified(adapter, body, headers)
    credential_version_mark_used(credential=endpoint.credential, version=version)
    # In autocommit the INSERT commits on its own, one round trip instead of BEGIN, INSERT,
    # COMMIT; inside a caller's transaction a savepoint keeps a duplicate from spoiling it.
    nested = transaction.get_connection().in_atomic_block
    now = timezone.now()
    # Due at once with no task: the next relay pass queues it.
    event = InboundEvent(
        endpoint=endpoint,
        provider=provider,
        external_id=external_id,
        body=body,
        headers=adapter.stored_headers(headers),
        remote_ip=remote_ip,
        signature_version=version,
        attempt_limit=RetryPolicy().max_attempts,
        next_attempt_at=None if malformed else now,
        **({"status": Status.DEAD, "error": malformed, "processed_at": now} if malformed else {}),
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
        "webhooks.received event=%s endpoint=%s provider=%s signature_version=%s%s",
        event.pk,
        endpoint.pk,
        provider,
        version,
        " status=dead reason=malformed_payload" if malformed else "",
    )
    return event, True


@sensitive_variables("receiving")
def _verified(adapter, provider: str, endpoint_id, body: bytes, headers, url: str):
    """(endpoint, version of the secret that signed it), or raise."""
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
            return receiving.endpoint, version
        except SignatureInvalid as exc:
            # A refusal against the cached copy is checked again against the database: the
            # secret may have been rotated in the last few seconds.
            if receiving.cached and not refresh:
                continue
            raise _reject(receiving.endpoint, str(exc)) from None


def _identified(adapter, body: bytes, headers) -> tuple[str, str]:
    """(the provider's event id, the reason it cannot be processed or ""). A body without an id
    of its own is identified by its digest, so that a redelivery is still a duplicate."""
    try:
        parse_json_body(body)
        return adapter.event_id(body, headers)[:255], ""
    except PayloadInvalid as exc:
        reason = f"Malformed payload: {exc}"
    try:
        return adapter.event_id(body, headers)[:255], reason
    except (PayloadInvalid, RecursionError):
        return f"sha256:{hashlib.sha256(body).hexdigest()}", reason


# --- processing -----------------------------------------------------------------------------

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
            fanned[event.pk] = _process(event, customer, receiving[customer_id], loaded[event.pk])
            claimed.append(event)
        # Those fanned out were written with their deliveries.
        settled = {event.pk for event in claimed if fanned[event.pk]}
        settled.update(e.pk for e in _settle([e for e in claimed if not fanned[e.pk]], loaded))
    return [event for event in claimed if event.pk in settled], fanned


def inbound_events_relay_due() -> int:
    """Dispatcher step, every pass: queue due events (just received, retries, lost messages) in
    tasks of PROCESS_BATCH ids (``relay_due``), so accepted events reach a worker within one
    dispatch interval; events out of attempts are dead-lettered instead."""
    return relay_due(INBOUND)


def inbound_events_recover_leases() -> int:
    """Dispatcher step, every pass: events whose worker died mid-batch become due again, or
    dead at their attempt limit (``Outbox.recover_expired``)."""
    return INBOUND.recover_expired()


def inbound_events_replay(*, queryset, enqueue: bool = True) -> int:
    """Process finished events again (dead letters after a fix, or processed ones to re-send),
    with a fresh retry budget (``Outbox.reopen``)."""
    finished = [status for status in Status.values if status not in LIVE]
    return INBOUND.reopen(
        queryset,
        statuses=finished,
        budgets=lambda ids: [(RetryPolicy().max_attempts, ids)],
        enqueue=enqueue,
        error="",
    )


# --- subscriptions --------------------------------------------------------------------------


@sensitive_variables()
def _new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@sensitive_variables()
def _signing_credential_create(*, subscription: Subscription, secret: str, created_by) -> None:
    """The subscription's signing credential: its own scope, so that its ciphertexts are bound
    to this subscription, with the subscription's customer as owner (tenancy)."""
    credential = credential_create_owned(
        provider=SIGNING_PROVIDER,
        purpose=Credential.Purpose.SUBSCRIPTION_SIGNING,
        owner_scope=f"subscription:{subscription.pk}",
        customer=subscription.customer,
        label=f"Signing secret of subscription #{subscription.pk}",
        fields={"secret": secret},
        created_by=created_by,
    )
    subscription.signing_credential = credential
    subscription.save(update_fields=["signing_credential"])


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
    created_by=None,
) -> tuple[Subscription, str]:
    """Returns (subscription, secret); the secret is not retrievable afterwards. The secret is
    version 1 of the subscription's ``subscription_signing`` credential (audited as created by
    ``created_by``: an API key, an admin user, None for the system)."""
    _validate(url=url, event_types=event_types, allow_private=allow_private)
    secret = _new_secret()
    with transaction.atomic():
        subscription = Subscription.objects.create(
            url=url, event_types=event_types, allow_private=allow_private, customer=customer
        )
        _signing_credential_create(subscription=subscription, secret=secret, created_by=created_by)
    logger.info("webhooks.subscription_created subscription=%s", subscription.pk)
    return subscription, secret


@sensitive_variables()
def subscription_rotate_secret(
    *,
    subscription: Subscription,
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
    created_by=None,
    reason: str = "",
) -> str:
    """A new current secret; the old ones keep signing for ``grace_seconds`` (0 = stop now; an
    old secret already ending sooner keeps its end). A credential rotation of the subscription's
    signing credential: audited, and the retired versions are revoked by upkeep after grace."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValidationError({"grace_seconds": f"Between 0 and {MAX_GRACE_SECONDS} seconds."})
    secret = _new_secret()
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        credential = locked.signing_credential
        if credential is None or not credential.enabled:
            # No secret to rotate from (none was ever moved here, or it was revoked entirely):
            # a new credential takes over as version 1.
            _signing_credential_create(subscription=locked, secret=secret, created_by=created_by)
            version = 1
        else:
            version = credential_rotate(
                credential=credential,
                fields={"secret": secret},
                grace_seconds=grace_seconds,
                created_by=created_by,
                reason=reason,
                owned=True,
                cap_previous_grace=True,
            ).version
    subscription.signing_credential = locked.signing_credential
    logger.info(
        "webhooks.subscription_secret_rotated subscription=%s version=%s grace_seconds=%s",
        subscription.pk,
        version,
        grace_seconds,
    )
    return secret


def subscription_owner_sync(*, subscription: Subscription) -> None:
    """After an admin changed a subscription's customer: its signing credential follows, so
    tenancy checks keep treating it as that customer's."""
    Credential.objects.filter(pk=subscription.signing_credential_id).exclude(
        customer_id=subscription.customer_id
    ).update(customer_id=subscription.customer_id, updated_at=timezone.now())


def subscription_deleted(sender, instance: Subscription, **kwargs) -> None:
    """post_delete of a subscription (admin, or its customer's deletion): its signing secrets
    are revoked, ciphertext and all; the credential stays for its audit trail."""
    credential = Credential.objects.filter(pk=instance.signing_credential_id).first()
    if credential is not None and credential.enabled:
        credential_revoke(
            credential=credential,
            include_current=True,
            reason=f"subscription #{instance.pk} deleted",
        )


def subscription_disable(*, subscription_id: int, reason: str) -> None:
    updated = Subscription.objects.filter(pk=subscription_id, active=True).update(
        active=False, disabled_at=timezone.now(), disabled_reason=reason[:200]
    )
    if updated:
        logger.warning(
            "webhooks.subscription_disabled subscription=%s reason=%s", subscription_id, reason
        )
