"""Prometheus metrics computed from the database at scrape time, so every web process reports
the same figures whichever of them is scraped."""

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

__all__ = ("register_collector", "registry")

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


@register_collector
def _process_metrics():
    from django.utils import timezone

    from integrations.models import ProcessHeartbeat

    age = GaugeMetricFamily(
        "switchyard_process_heartbeat_age_seconds",
        "Seconds since each process role last reported a heartbeat.",
        labels=["role"],
    )
    now = timezone.now()
    for role in ProcessHeartbeat.Role.values:
        latest = (
            ProcessHeartbeat.objects.filter(role=role)
            .order_by("-seen_at")
            .values_list("seen_at", flat=True)
            .first()
        )
        if latest is not None:
            age.add_metric([role], (now - latest).total_seconds())
    yield age
