"""Miro boards by polling (Miro removed its webhooks; docs/providers/miro.md).

A dispatcher step (``miro_polls_start_due``, every pass, one indexed query when nothing is due)
claims each due endpoint with a lease and queues ``webhooks.tasks.miro_board_poll``. The task
lists the board a cursor page at a time through the delivery engine's send path
(``operation_execute``: egress policy and pinned session, the Miro adapter's request and
classification, the shared-credential rule) under the credential's rate limit
(``integrations.limits``: a deferral or a 429 reschedules the poll, never sleeps).

Invariant: a page's events, its items' marks and the next cursor commit in one transaction, so
a poller killed anywhere resumes from the last committed page and finds nothing twice (and an
event found twice anyway is the same ``<item id>@<modifiedAt>``, a duplicate for the store
path). Items are compared with their own stored ``modifiedAt``: a different one is an update, an
unknown id a creation. A complete scan (a page without a cursor) ends with the comparison of the
item set: known items it did not see were deleted. The first complete scan is a baseline and
emits nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.prepared import PreparedRead
from credentials.services import CredentialNotConfigured, credential_resolve
from integrations import egress
from integrations.deliveries.prepare import PreparedCall
from integrations.deliveries.send import operation_execute
from integrations.limits.services import Deferral, SendPermits, rate_limit_quotas, send_settled
from integrations.oauth import TokenRefreshFailed, oauth_token_fresh
from integrations.outbox import task_enqueue
from integrations.providers.miro import polled_change_body
from integrations.providers.types import Outcome
from integrations.registry import get_provider
from integrations.selectors import integration_active_get
from webhooks.models import EndpointSource, PolledItem, WebhookEndpoint
from webhooks.services import inbound_message_store

__all__ = ("PollResult", "miro_board_poll", "miro_polls_start_due")

logger = structlog.stdlib.get_logger(__name__)

PROVIDER = "miro"
# A poll holds its endpoint this long at most; a dead worker's poll is taken up again after it.
LEASE_SECONDS = 120
# Seconds of paging per task; a larger board goes on from its cursor at the next pass.
TASK_BUDGET_SECONDS = 20.0
START_BATCH = 50
HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class PollResult:
    pages: int = 0
    events: int = 0
    complete: bool = False
    error: str = ""


# The dispatcher asks on every pass (a fraction of a second), mostly to find none: compiled once.
_DUE = PreparedRead(
    lambda now: (
        WebhookEndpoint.objects.filter(
            source=EndpointSource.MIRO_POLL, active=True, customer__active=True
        )
        .filter(Q(source_due_at__isnull=True) | Q(source_due_at__lte=now))
        .filter(Q(source_lease_until__isnull=True) | Q(source_lease_until__lt=now))
        .values_list("pk")[:START_BATCH]
    )
)


def miro_polls_start_due() -> int:
    """Dispatcher step: queue a poll of each board that is due and not being polled."""
    now = timezone.now()
    started = 0
    for (pk,) in _DUE.rows(now=now):
        if _claim(pk, now):
            task_enqueue("webhooks.tasks.miro_board_poll", pk, task_name="miro_poll")
            started += 1
    return started


def _claim(pk: int, now) -> bool:
    lease = now + timedelta(seconds=LEASE_SECONDS)
    free = Q(source_lease_until__isnull=True) | Q(source_lease_until__lt=now)
    return bool(WebhookEndpoint.objects.filter(free, pk=pk).update(source_lease_until=lease))


@dataclass
class _Context:
    endpoint: WebhookEndpoint
    integration: object
    credentials: dict
    shared: bool
    quotas: list
    region: str


def _context(endpoint: WebhookEndpoint) -> _Context:
    customer = endpoint.customer
    integration = integration_active_get(customer=customer, provider_key=PROVIDER)
    if integration is None:
        raise CredentialNotConfigured(provider=PROVIDER, customer=customer, purpose="api")
    resolved = credential_resolve(provider=PROVIDER, customer=customer)
    # Expiring OAuth tokens: refreshed first when due (a no-op without a refresh_token).
    resolved = oauth_token_fresh(
        provider_key=PROVIDER,
        customer=customer,
        resolved=resolved,
        config=integration.config,
        trusted=integration.trusted,
    )
    quotas = rate_limit_quotas(
        provider_key=PROVIDER,
        config=integration.config,
        customer_id=customer.pk,
        credential_id=resolved.credential_id,
        credential_fields=resolved.fields,
    )
    return _Context(
        endpoint, integration, resolved.fields, resolved.shared, quotas, customer.region.code
    )


def _fetch(ctx: _Context, cursor: str | None, permits: SendPermits):
    """One page: a ``CallOutcome``, or the ``Deferral`` the limits ask for."""
    scope = {"provider_key": PROVIDER, "region": ctx.region, "quotas": ctx.quotas}
    permit = permits.permit(customer_id=ctx.endpoint.customer_id, **scope)
    if isinstance(permit, Deferral):
        return permit
    config = ctx.endpoint.source_config
    page_input = {"board_id": config["board_id"], "limit": config.get("page_size", 50)}
    if cursor:
        page_input["cursor"] = cursor
    deadline = float(settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS)
    outcome = operation_execute(
        call=PreparedCall(PROVIDER, "list_items", ctx.integration.pk, page_input),
        customer=ctx.endpoint.customer,
        credentials=ctx.credentials,
        session=egress.session_for(PROVIDER),
        integration=ctx.integration,
        timeout=get_provider(PROVIDER).timeouts(ctx.integration.config, deadline=deadline),
        credential_shared=ctx.shared,
    )
    # The breaker counts failures of distinct callers; a poll is told apart from deliveries
    # by a negative id.
    send_settled(delivery_id=-ctx.endpoint.pk, outcome=outcome, permit=permit, **scope)
    return outcome


def miro_board_poll(
    *, endpoint_id: int, budget_seconds: float = TASK_BUDGET_SECONDS, max_pages: int | None = None
) -> PollResult:
    """Poll one board from its saved cursor until the scan completes, the budget is spent, or
    Miro or the limits say wait; then release the lease with the next due time."""
    endpoint = (
        WebhookEndpoint.objects.select_related("customer__region")
        .filter(pk=endpoint_id, source=EndpointSource.MIRO_POLL, active=True)
        .first()
    )
    if endpoint is None:
        return PollResult(error="not an active Miro polling endpoint")
    interval = endpoint.source_config.get("interval_seconds", 60)
    try:
        ctx = _context(endpoint)
    except (CredentialNotConfigured, TokenRefreshFailed) as exc:
        return _finish(endpoint, PollResult(error=str(exc)), delay=interval)
    permits, pages, events = SendPermits(), 0, 0
    expires = time.monotonic() + budget_seconds
    while True:
        outcome = _fetch(ctx, endpoint.source_state.get("cursor"), permits)
        if isinstance(outcome, Deferral):
            result = PollResult(pages, events, error=f"deferred: {outcome.reason}")
            return _finish(endpoint, result, delay=outcome.seconds, failed=False)
        if not outcome.ok:
            return _failed(endpoint, outcome, PollResult(pages, events), interval)
        found, complete = _page_apply(endpoint, outcome.result)
        pages, events = pages + 1, events + found
        if complete:
            return _finish(endpoint, PollResult(pages, events, complete=True), delay=interval)
        if time.monotonic() > expires or (max_pages is not None and pages >= max_pages):
            return _finish(endpoint, PollResult(pages, events), delay=0)


def _failed(endpoint: WebhookEndpoint, outcome, so_far: PollResult, interval: float):
    error = f"{outcome.error_class or outcome.outcome}: {outcome.error}"[:2000]
    if outcome.error_class == "egress_refused":
        # source_error is shown to API callers: the address stays in the log.
        logger.warning("sources.miro_poll_refused", endpoint=str(endpoint.public_id), reason=error)
        error = f"egress_refused: {egress.EgressRefused.public_message}"
    delay = interval
    if outcome.outcome == Outcome.RATE_LIMITED and outcome.retry_after:
        delay = outcome.retry_after
    elif outcome.status == 400 and endpoint.source_state.get("cursor"):
        # A cursor Miro no longer takes: the scan starts again from the first page (the items
        # already seen are found unchanged; the ones not yet seen are not lost).
        state = {**endpoint.source_state, "cursor": None}
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(source_state=state)
        delay = 0
    result = PollResult(so_far.pages, so_far.events, error=error)
    return _finish(endpoint, result, delay=delay)


def _finish(endpoint: WebhookEndpoint, result: PollResult, *, delay: float, failed=True):
    now = timezone.now()
    changes = {
        "source_due_at": now + timedelta(seconds=delay),
        "source_lease_until": None,
        "source_error": result.error if failed else "",
    }
    if not result.error or not failed:
        changes["source_seen_at"] = now
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(**changes)
    logger.info(
        "sources.miro_poll",
        endpoint=str(endpoint.public_id),
        provider=endpoint.provider,
        customer=endpoint.customer.slug,
        pages=result.pages,
        events=result.events,
        complete=result.complete,
        error=result.error[:200],
    )
    return result


def _mark(item: dict) -> str:
    return str(item.get("modifiedAt") or item.get("createdAt") or "")[:40]


def _store(endpoint: WebhookEndpoint, change: str, item: dict, now: str) -> int:
    body = polled_change_body(
        change=change, board_id=endpoint.source_config["board_id"], item=item, detected_at=now
    )
    _, created = inbound_message_store(endpoint=endpoint, body=body, headers=HEADERS)
    return int(created)


@transaction.atomic
def _page_apply(endpoint: WebhookEndpoint, page: dict) -> tuple[int, bool]:
    """Store the changes one page shows and move the cursor, in one transaction: (events new,
    whether the scan completed)."""
    state = dict(endpoint.source_state)
    scan, baseline_done = state.get("scan", 1), state.get("baseline_done", False)
    now = timezone.now().isoformat()
    items = {str(item["id"]): item for item in page["items"]}
    known = {
        row.item_id: row
        for row in PolledItem.objects.filter(endpoint=endpoint, item_id__in=list(items))
    }
    found, new_rows, seen_rows = 0, [], []
    for item_id, item in items.items():
        row = known.get(item_id)
        if row is None:
            found += _store(endpoint, "created", item, now) if baseline_done else 0
            new_rows.append(
                PolledItem(
                    endpoint=endpoint,
                    item_id=item_id,
                    item_type=str(item.get("type") or "")[:50],
                    modified_at=_mark(item),
                    seen_scan=scan,
                )
            )
            continue
        if row.modified_at != _mark(item):
            found += _store(endpoint, "updated", item, now)
            row.modified_at = _mark(item)
        row.seen_scan = scan
        seen_rows.append(row)
    PolledItem.objects.bulk_create(new_rows)
    PolledItem.objects.bulk_update(seen_rows, ["modified_at", "seen_scan"])
    state["modified_at_high_water"] = _high_water(state.get("modified_at_high_water"), items)
    complete = not page.get("cursor")
    if complete:
        found += _deletions(endpoint, scan, baseline_done, now)
        state.update(cursor=None, scan=scan + 1, baseline_done=True, completed_at=now)
    else:
        state["cursor"] = page["cursor"]
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(source_state=state)
    endpoint.source_state = state
    return found, complete


def _high_water(current: str | None, items: dict) -> str | None:
    """The newest ``modifiedAt`` seen on the board (compared as times, kept as Miro spells it)."""
    best, best_at = current, parse_datetime(current) if current else None
    for item in items.values():
        mark = _mark(item)
        at = parse_datetime(mark) if mark else None
        if at is not None and (best_at is None or at > best_at):
            best, best_at = mark, at
    return best


def _deletions(endpoint: WebhookEndpoint, scan: int, baseline_done: bool, now: str) -> int:
    """Known items a complete scan did not see: deleted (after the baseline), forgotten."""
    gone = PolledItem.objects.filter(endpoint=endpoint, seen_scan__lt=scan)
    found = 0
    if baseline_done:
        for row in gone.iterator(chunk_size=500):
            item = {"id": row.item_id, "type": row.item_type, "modifiedAt": row.modified_at}
            found += _store(endpoint, "deleted", item, now)
    gone.delete()
    return found
