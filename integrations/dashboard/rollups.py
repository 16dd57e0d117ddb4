"""The dashboard's rollups, kept by the dispatcher step ``rollup_dashboard``.

Attempts are read along the primary key from a cursor, never by time (``started_at`` has no
index, and none is added: every attempt writes it). An attempt row is inserted once, finished,
but ids are taken before commit, so a run only reads up to the highest id seen at the previous
run (a minute ago): a slower transaction holding a lower id has committed by then.

Counters kept elsewhere (the webhooks app's rejected signatures, one UPDATE on the endpoint row
the receiver already makes) are added with ``counter_add`` as a function returning their
current total; the step records how much each grew since its last run."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from customers.lifecycle import RetentionRule
from integrations.deliveries.models import DeliveryAttempt
from integrations.models.rollup import (
    LATENCY_BOUNDS_MS,
    CounterRollup,
    DeliveryRollup,
    RollupCursor,
)
from integrations.providers.types import Outcome

__all__ = (
    "BATCH",
    "COUNTER_ROLLUPS",
    "DELIVERY_ROLLUPS",
    "MINUTES_KEPT",
    "STEP_EVERY_SECONDS",
    "counter_add",
    "counters_advance",
    "dashboard_rollup",
    "delivery_rollups_advance",
    "floor_time",
)

STEP_EVERY_SECONDS = 60
BATCH = 100_000
BUDGET_SECONDS = 1.0
# Minute buckets only serve the last hour's figures.
MINUTES_KEPT = timedelta(hours=2)
ATTEMPTS = "attempts"
COUNTERS = "counters"

_counters: dict[str, Callable[[], int]] = {}


def counter_add(name: str, total: Callable[[], int]) -> None:
    """Roll up a counter kept elsewhere; ``total()`` reads its current value. From ready()."""
    if name in _counters:
        raise RuntimeError(f"Dashboard counter '{name}' is added twice")
    _counters[name] = total


def floor_time(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=moment.tzinfo)


def _aggregated(first: int, last: int) -> dict[tuple, dict]:
    """Attempts with ids in (first, last], grouped by the database per minute, provider and
    customer (with cumulative latency counts), then summed per hour here."""
    at_most = {
        f"le{i}": Count("pk", filter=Q(duration_ms__lte=bound))
        for i, bound in enumerate(LATENCY_BOUNDS_MS)
    }
    rows = (
        DeliveryAttempt.objects.filter(pk__gt=first, pk__lte=last)
        .annotate(minute=TruncMinute("started_at", tzinfo=UTC))
        .values("minute", "delivery__provider_key", "delivery__customer_id")
        .annotate(
            attempts=Count("pk"),
            succeeded=Count("pk", filter=Q(outcome=Outcome.SUCCESS)),
            duration=Sum("duration_ms"),
            **at_most,
        )
        .order_by()
    )
    groups: dict[tuple, dict] = {}
    horizon = timezone.now() - MINUTES_KEPT
    for row in rows:
        cumulative = [row[f"le{i}"] for i in range(len(LATENCY_BOUNDS_MS))] + [row["attempts"]]
        histogram = [b - a for a, b in zip([0, *cumulative], cumulative, strict=False)]
        for span in DeliveryRollup.Span.values:
            if span == DeliveryRollup.Span.MINUTE and row["minute"] < horizon:
                continue  # a catch-up's old minutes: only hours are kept that long
            key = (
                floor_time(row["minute"], span),
                span,
                row["delivery__provider_key"],
                row["delivery__customer_id"],
            )
            group = groups.setdefault(
                key,
                {"attempts": 0, "succeeded": 0, "duration": 0, "histogram": [0] * len(histogram)},
            )
            group["attempts"] += row["attempts"]
            group["succeeded"] += row["succeeded"]
            group["duration"] += row["duration"] or 0
            group["histogram"] = [a + b for a, b in zip(group["histogram"], histogram, strict=True)]
    return groups


def _merge(groups: dict[tuple, dict]) -> None:
    """Add ``groups`` to the stored rows (the step holds the cursor's lock: one writer)."""
    buckets = {key[0] for key in groups}
    existing = {
        (r.bucket, r.span, r.provider_key, r.customer_id): r
        for r in DeliveryRollup.objects.filter(bucket__in=buckets)
    }
    new, changed = [], []
    for key, group in groups.items():
        histogram = group["histogram"]
        row = existing.get(key)
        if row is None:
            row = DeliveryRollup(bucket=key[0], span=key[1], provider_key=key[2])
            row.customer_id = key[3]
            row.latency = [0] * len(histogram)
            new.append(row)
        else:
            changed.append(row)
        row.attempts += group["attempts"]
        row.succeeded += group["succeeded"]
        row.duration_ms += group["duration"]
        row.latency = [a + b for a, b in zip(row.latency, histogram, strict=True)]
    DeliveryRollup.objects.bulk_create(new)
    DeliveryRollup.objects.bulk_update(
        changed, ["attempts", "succeeded", "duration_ms", "latency"], batch_size=500
    )


def _cursor(name: str) -> RollupCursor:
    RollupCursor.objects.get_or_create(name=name)
    return RollupCursor.objects.select_for_update().get(name=name)


def _advance_once(batch: int) -> int:
    """Roll up the next ``batch`` attempts that are surely committed; how many were read."""
    with transaction.atomic():
        cursor = _cursor(ATTEMPTS)
        first = cursor.state.get("last_id", 0)
        settled = cursor.state.get("seen_max", 0)
        pending = DeliveryAttempt.objects.filter(pk__gt=first, pk__lte=settled).order_by("pk")
        # The batch's last id, read along the primary key; the rest, if fewer, up to settled.
        last = pending.values_list("pk", flat=True)[batch - 1 : batch].first() or settled
        if last <= first:
            return 0
        groups = _aggregated(first, last)
        _merge(groups)
        cursor.state["last_id"] = last
        cursor.save(update_fields=["state"])
        return sum(g["attempts"] for k, g in groups.items() if k[1] == DeliveryRollup.Span.HOUR)


def delivery_rollups_advance(*, batch: int = BATCH, budget_seconds: float | None = None) -> int:
    """Roll up what committed attempts allow, then note the highest id for the next run.
    Returns how many attempts were rolled up."""
    started, total = time.monotonic(), 0
    while True:
        done = _advance_once(batch)
        total += done
        over = budget_seconds is not None and time.monotonic() - started >= budget_seconds
        if done < batch or over:
            break
    highest = DeliveryAttempt.objects.aggregate(top=Max("pk"))["top"] or 0
    with transaction.atomic():
        cursor = _cursor(ATTEMPTS)
        cursor.state["seen_max"] = max(highest, cursor.state.get("seen_max", 0))
        cursor.save(update_fields=["state"])
    horizon = floor_time(timezone.now() - MINUTES_KEPT, DeliveryRollup.Span.HOUR)
    DeliveryRollup.objects.filter(span=DeliveryRollup.Span.MINUTE, bucket__lt=horizon).delete()
    return total


def counters_advance() -> dict[str, int]:
    """Record how much each counter grew since the last run in the current minute; a counter
    that went down (an endpoint deleted) is taken as the new base."""
    now = floor_time(timezone.now(), DeliveryRollup.Span.MINUTE)
    grown = {}
    with transaction.atomic():
        cursor = _cursor(COUNTERS)
        for name, total in _counters.items():
            value = int(total() or 0)
            previous = cursor.state.get(name)
            cursor.state[name] = value
            if previous is None or value <= previous:
                continue
            grown[name] = value - previous
            row, _ = CounterRollup.objects.get_or_create(bucket=now, name=name)
            CounterRollup.objects.filter(pk=row.pk).update(count=F("count") + grown[name])
        cursor.save(update_fields=["state"])
    return grown


def dashboard_rollup() -> int:
    """The dispatcher step."""
    counters_advance()
    return delivery_rollups_advance(budget_seconds=BUDGET_SECONDS)


def _delivery_rollups_expired(cutoff: datetime):
    return DeliveryRollup.objects.filter(bucket__lt=cutoff)


def _counter_rollups_expired(cutoff: datetime):
    return CounterRollup.objects.filter(bucket__lt=cutoff)


# Rollups of attempts are kept as long as succeeded deliveries (the bulk of what they count).
DELIVERY_ROLLUPS = RetentionRule(
    name="delivery_rollups",
    setting="SWITCHYARD_RETAIN_SUCCEEDED_DAYS",
    expired=_delivery_rollups_expired,
    order_by="bucket",
)
COUNTER_ROLLUPS = RetentionRule(
    name="counter_rollups",
    setting="SWITCHYARD_RETAIN_INBOUND_DAYS",
    expired=_counter_rollups_expired,
    order_by="bucket",
)
