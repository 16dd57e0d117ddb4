"""The dispatcher's relay: queue an outbox's due rows on the broker, bounded and in turn."""

from dataclasses import dataclass
from itertools import zip_longest

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from config.prepared import PreparedRead
from integrations.outbox.broker import enqueued_until, requeue_unclaimed
from integrations.outbox.outbox import Outbox

__all__ = ("relay_due",)

# With ``fair_by``, a pass serves at most this many owners, those waiting longest first.
OWNERS_PER_PASS = 100
PICKED_FIELDS = ("pk", "attempts", "attempt_limit")


def relay_due(outbox: Outbox) -> int:
    """Queue due rows that have no task in the broker, keeping at most
    SWITCHYARD_RELAY_MAX_QUEUED of the table queued; returns how many were queued. With
    ``fair_by``, owners take turns (round robin, at most SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT each
    queued or claimed), so one owner's burst never queues ahead of another's single row.
    Due rows out of attempts are dead-lettered instead. Several dispatchers may run: rows are
    picked with SKIP LOCKED where the database has it (SQLite serialises writers anyway).

    Rows queued a few seconds ago whose broker message is gone (a flushed broker, a killed
    cluster) are queued again first (``requeue_unclaimed``), not after the enqueue timeout.
    Only what is due when the pass begins is taken: rows arriving meanwhile travel together on
    the next pass instead of trickling out as tasks of one or two ids."""
    requeue_unclaimed(outbox)
    now = timezone.now()
    reads = _reads(outbox)
    queued = sum(n for _, n in reads.queued.rows(now=now))
    room = settings.SWITCHYARD_RELAY_MAX_QUEUED - queued
    quota = _owner_quotas(outbox, now) if outbox.fair_by else None
    relayed = 0
    while room > 0 and quota != {}:
        limit = min(room, settings.SWITCHYARD_RELAY_BATCH)
        with transaction.atomic():
            picked = _pick(outbox, now, limit, quota)
            ids = [pk for pk, used, allowed, _ in picked if used < allowed]
            if exhausted := [pk for pk, used, allowed, _ in picked if used >= allowed]:
                outbox.dead_letter_exhausted(exhausted)
            if ids:
                outbox.model.objects.filter(pk__in=ids).update(enqueued_until=enqueued_until())
        outbox.enqueue(ids)
        relayed += len(ids)
        room -= len(picked)
        if quota is not None:
            for *_, owner in picked:
                quota[owner] -= 1
            quota = {owner: left for owner, left in quota.items() if left > 0}
        if len(picked) < limit:
            break
    return relayed


def _due(outbox: Outbox, now):
    """Rows due by ``now`` that no broker message carries (never queued, or marked so long ago
    that the marker ran out)."""
    return outbox.waiting_rows().filter(
        Q(enqueued_until__isnull=True) | Q(enqueued_until__lt=now), next_attempt_at__lte=now
    )


@dataclass(frozen=True)
class _Reads:
    """A pass's reads of one outbox, compiled once per process (a pass runs every fraction of a
    second, and compiling them cost more than running them). Values ``now``, ``status``,
    ``owner_id``; ``limit`` is a literal."""

    queued: PreparedRead  # rows marked queued, by status
    busy: PreparedRead  # rows queued or under a live lease, by owner
    owners: PreparedRead  # owners with due rows, those waiting longest first
    oldest_of_status: PreparedRead  # the oldest due rows of a status, locked
    oldest_of_owner: PreparedRead  # the oldest due rows of an owner, locked


_reads_by_outbox: dict[str, _Reads] = {}


def _reads(outbox: Outbox) -> _Reads:
    reads = _reads_by_outbox.get(outbox.name)
    if reads is None:
        reads = _reads_by_outbox[outbox.name] = _compiled_reads(outbox)
    return reads


def _compiled_reads(outbox: Outbox) -> _Reads:
    model, owner = outbox.model, outbox.fair_by or "pk"

    def queued(now):
        return Q(status__in=outbox.waiting, enqueued_until__gt=now)

    def oldest(now):
        return _due(outbox, now).order_by("next_attempt_at").select_for_update(skip_locked=True)

    return _Reads(
        queued=PreparedRead(
            lambda now: (
                model.objects.filter(queued(now))
                .order_by()
                .values_list("status")
                .annotate(n=Count("pk"))
            )
        ),
        busy=PreparedRead(
            lambda now: (
                model.objects.filter(queued(now) | Q(status=outbox.claimed, lease_until__gt=now))
                .order_by()
                .values_list(owner)
                .annotate(n=Count("pk"))
            )
        ),
        owners=PreparedRead(lambda now: _owners_waiting(outbox, _due(outbox, now))),
        oldest_of_status=PreparedRead(
            lambda now, status, limit: (
                oldest(now)
                .filter(status=status)
                .values_list(*PICKED_FIELDS, owner, "next_attempt_at")[:limit]
            ),
            literals=("limit",),
        ),
        oldest_of_owner=PreparedRead(
            lambda now, owner_id, limit: (
                oldest(now).filter(**{owner: owner_id}).values_list(*PICKED_FIELDS, owner)[:limit]
            ),
            literals=("limit",),
        ),
    )


def _pick(outbox: Outbox, now, limit: int, quota: dict | None) -> list[tuple]:
    """Up to ``limit`` due rows as (pk, attempts, attempt_limit, owner), locked: the oldest
    first, or with quotas each owner's oldest in turn."""
    reads = _reads(outbox)
    if quota is None:
        # One ordered index range per status, merged here: an IN over several statuses would
        # make the database sort every due row to find the oldest few.
        rows = [
            row
            for status in outbox.waiting
            for row in reads.oldest_of_status.rows(now=now, status=status, limit=limit)
        ]
        return [row[:4] for row in sorted(rows, key=lambda row: row[4])[:limit]]
    groups = [
        reads.oldest_of_owner.rows(now=now, owner_id=owner, limit=min(left, limit))
        for owner, left in quota.items()
    ]
    return [row for turn in zip_longest(*groups) for row in turn if row][:limit]


def _owner_quotas(outbox: Outbox, now) -> dict:
    """How many more rows each owner waiting longest may have queued on this pass.

    Claimed rows count while their lease runs: the index range of live leases holds only the
    rows settled within the last lease period, whereas every claimed row settled since the
    table was last vacuumed stays in the range of all claimed ones (and is read on every pass
    until then). A row whose lease expired is about to be recovered anyway."""
    reads = _reads(outbox)
    busy = dict(reads.busy.rows(now=now))
    cap = settings.SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT
    return {
        owner: cap - busy.get(owner, 0)
        for (owner,) in reads.owners.rows(now=now)
        if busy.get(owner, 0) < cap
    }


def _owners_waiting(outbox: Outbox, due) -> QuerySet:
    """Owners with due rows, those waiting longest first. One index probe per owner (e.g.
    ``delivery_customer_due``) rather than grouping every due row: a pass costs the same with a
    backlog of a thousand rows or a million."""
    owner_model = outbox.model._meta.get_field(outbox.fair_by).related_model
    first_due = (
        due.filter(**{outbox.fair_by: OuterRef("pk")})
        .order_by("next_attempt_at")
        .values("next_attempt_at")
    )
    return (
        owner_model.objects.annotate(first=Subquery(first_due[:1]))
        .filter(first__isnull=False)
        .order_by("first")
        .values_list("pk")[:OWNERS_PER_PASS]
    )
