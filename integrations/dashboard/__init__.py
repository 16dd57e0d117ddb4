"""The admin dashboard: "is anything wrong?" answered from rollups and index reads, so the
admin index stays fast with millions of attempts (bench/console.py measures it)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from integrations.dashboard.charts import bars_svg
from integrations.dashboard.figures import Figure, Section, changelist, section_add, sections
from integrations.dashboard.rollups import counter_add
from integrations.dashboard.traffic import WINDOWS, Traffic, Window, bucket_starts, traffic, trend

__all__ = (
    "WINDOWS",
    "Dashboard",
    "Figure",
    "Section",
    "Window",
    "changelist",
    "counter_add",
    "dashboard",
    "section_add",
    "trend",
)

DEFAULT_WINDOW = "24h"


@dataclass
class Dashboard:
    window: Window
    windows: list[Window]
    traffic: Traffic
    sections: list[Section]
    volume_chart: str

    @property
    def tables(self) -> list[tuple[str, list]]:
        return [("Providers", self.traffic.providers), ("Customers", self.traffic.customers)]


def _link_groups(seen: Traffic) -> None:
    """Each provider and customer row leads to its deliveries created in the window."""
    since = seen.since.isoformat()
    seen.total.link = changelist("integrations.delivery", created_at__gte=since)
    for group in seen.providers:
        group.link = changelist(
            "integrations.delivery", provider_key=group.key, created_at__gte=since
        )
    for group in seen.customers:
        group.link = changelist(
            "integrations.delivery", customer__id__exact=group.key, created_at__gte=since
        )


def dashboard(window_key: str | None = None) -> Dashboard:
    window = WINDOWS.get(window_key or DEFAULT_WINDOW, WINDOWS[DEFAULT_WINDOW])
    now = timezone.now()
    seen = traffic(window, now)
    _link_groups(seen)
    built = sections(now, window)
    for section in built:
        if section.trend is not None:
            # Trends are of failures (dead letters): drawn in red.
            section.chart = bars_svg(
                bucket_starts(window, now), section.trend, section.trend, label=section.trend_label
            )
    return Dashboard(
        window=window,
        windows=list(WINDOWS.values()),
        traffic=seen,
        sections=built,
        volume_chart=bars_svg(
            seen.buckets, seen.attempts, seen.failed, label=f"attempts per bucket, {window.label}"
        ),
    )
