"""Prometheus metrics computed from the database at scrape time, so every web process reports
the same figures whichever of them is scraped."""

from django.db.models import Count
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

__all__ = ("gauge_by_status", "register_collector", "registry")

registry = CollectorRegistry(auto_describe=False)


class _FunctionCollector:
    def __init__(self, collect):
        self._collect = collect

    def collect(self):
        yield from self._collect()


def register_collector(collect):
    """Register a function yielding metric families; usable as a decorator."""
    registry.register(_FunctionCollector(collect))
    return collect


def gauge_by_status(name: str, documentation: str, queryset, statuses) -> GaugeMetricFamily:
    """Rows of ``queryset`` per value of its ``status`` column, every one of ``statuses``
    reported (zeros included), from one grouped ``COUNT(*)`` (which an index on the status
    can answer alone)."""
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    counts = dict(queryset.values_list("status").annotate(n=Count("*")))
    for status in statuses:
        family.add_metric([status], counts.get(status, 0))
    return family
