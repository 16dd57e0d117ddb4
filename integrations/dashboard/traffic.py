"""Traffic figures read from the rollups: success rate, volume and latency per provider and per
customer over a window, and the series the charts draw. A window reads at most one row per
bucket, provider and customer, whatever the number of attempts behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncHour, TruncMinute

from customers.models import Customer
from integrations.dashboard.rollups import floor_time
from integrations.models.rollup import LATENCY_BOUNDS_MS, DeliveryRollup

__all__ = ("WINDOWS", "Traffic", "Window", "bucket_starts", "traffic", "trend")


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    length: timedelta
    span: int

    def since(self, now: datetime) -> datetime:
        """Start of the window's first bucket: the current bucket is the last one."""
        return floor_time(now, self.span) - self.length + timedelta(seconds=self.span)


WINDOWS = {
    w.key: w
    for w in (
        Window("1h", "1 h", timedelta(hours=1), DeliveryRollup.Span.MINUTE),
        Window("24h", "24 h", timedelta(hours=24), DeliveryRollup.Span.HOUR),
        Window("7d", "7 d", timedelta(days=7), DeliveryRollup.Span.HOUR),
    )
}


def percentile(histogram: list[int], share: float) -> str:
    """The latency bucket holding the ``share`` quantile, as "≤ N ms" (or "> N ms")."""
    total = sum(histogram)
    if not total:
        return "-"
    running = 0
    for index, count in enumerate(histogram):
        running += count
        if running >= share * total:
            if index < len(LATENCY_BOUNDS_MS):
                return f"≤ {LATENCY_BOUNDS_MS[index]} ms"
            break
    return f"> {LATENCY_BOUNDS_MS[-1]} ms"


@dataclass
class Group:
    """One provider's or customer's attempts over the window."""

    key: object
    label: str
    link: str = ""
    attempts: int = 0
    succeeded: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))

    def add(self, attempts: int, succeeded: int, latency: list[int]) -> None:
        self.attempts += attempts
        self.succeeded += succeeded
        for index, count in enumerate(latency):
            self.histogram[index] += count

    @property
    def failed(self) -> int:
        return self.attempts - self.succeeded

    @property
    def success_rate(self) -> str:
        return f"{100 * self.succeeded / self.attempts:.1f} %" if self.attempts else "-"

    @property
    def p50(self) -> str:
        return percentile(self.histogram, 0.50)

    @property
    def p95(self) -> str:
        return percentile(self.histogram, 0.95)


@dataclass
class Traffic:
    window: Window
    since: datetime
    total: Group
    providers: list[Group]
    customers: list[Group]
    buckets: list[datetime]
    attempts: list[int]
    failed: list[int]


def bucket_starts(window: Window, now: datetime) -> list[datetime]:
    since = window.since(now)
    count = int(window.length.total_seconds() // window.span)
    return [since + timedelta(seconds=window.span * i) for i in range(count)]


def traffic(window: Window, now: datetime, *, customers_shown: int = 20) -> Traffic:
    since = window.since(now)
    # Tuples, not model instances: a week is one row per hour, provider and customer.
    rows = DeliveryRollup.objects.filter(span=window.span, bucket__gte=since).values_list(
        "bucket", "provider_key", "customer_id", "attempts", "succeeded", "latency"
    )
    total = Group("all", "All")
    providers: dict[str, Group] = {}
    customers: dict[int, Group] = {}
    buckets = bucket_starts(window, now)
    position = {start: i for i, start in enumerate(buckets)}
    attempts, failed = [0] * len(buckets), [0] * len(buckets)
    for bucket, provider, customer, count, succeeded, latency in rows:
        for group in (
            total,
            providers.setdefault(provider, Group(provider, provider)),
            customers.setdefault(customer, Group(customer, "")),
        ):
            group.add(count, succeeded, latency)
        index = position.get(bucket)
        if index is not None:
            attempts[index] += count
            failed[index] += count - succeeded
    ranked = sorted(customers.values(), key=lambda g: (-g.attempts, g.key))[:customers_shown]
    slugs = dict(Customer.objects.filter(pk__in=[g.key for g in ranked]).values_list("pk", "slug"))
    for group in ranked:
        group.label = slugs.get(group.key, str(group.key))
    return Traffic(
        window=window,
        since=since,
        total=total,
        providers=sorted(providers.values(), key=lambda g: g.label),
        customers=ranked,
        buckets=buckets,
        attempts=attempts,
        failed=failed,
    )


def trend(queryset: QuerySet, field_name: str, window: Window, now: datetime) -> list[int]:
    """Rows of ``queryset`` per bucket of ``window`` by ``field_name`` (a timestamp), counted
    in the database: the queryset should be an index range (dead letters are few)."""
    buckets = bucket_starts(window, now)
    trunc = TruncMinute if window.span == DeliveryRollup.Span.MINUTE else TruncHour
    counts = dict(
        queryset.filter(**{f"{field_name}__gte": buckets[0]})
        .annotate(slot=trunc(field_name, tzinfo=UTC))
        .values_list("slot")
        .annotate(n=Count("*"))  # not the pk: an index-only scan of (status, time) serves it
        .order_by()
    )
    return [counts.get(start, 0) for start in buckets]
