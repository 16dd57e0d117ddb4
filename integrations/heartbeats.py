"""Process heartbeats: how /readyz knows that a worker is consuming the broker, and each
role's heartbeat age in /metrics."""

import os
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from config.metrics import register_collector
from integrations.models import ProcessHeartbeat

__all__ = ("heartbeat_purge_stale", "heartbeat_record", "worker_is_alive", "worker_last_seen")

_PROCESS_STARTED_AT = timezone.now()


def heartbeat_record(*, role: str) -> None:
    now = timezone.now()
    ProcessHeartbeat.objects.update_or_create(
        role=role,
        host=socket.gethostname(),
        pid=os.getpid(),
        defaults={"seen_at": now},
        create_defaults={"seen_at": now, "started_at": _PROCESS_STARTED_AT},
    )


def heartbeat_purge_stale(*, older_than: timedelta = timedelta(days=1)) -> int:
    deleted, _ = ProcessHeartbeat.objects.filter(seen_at__lt=timezone.now() - older_than).delete()
    return deleted


def worker_last_seen() -> datetime | None:
    latest = (
        ProcessHeartbeat.objects.filter(role=ProcessHeartbeat.Role.WORKER)
        .order_by("-seen_at")
        .values_list("seen_at", flat=True)
        .first()
    )
    return latest


def worker_is_alive() -> bool:
    last = worker_last_seen()
    stale_after = timedelta(seconds=settings.SWITCHYARD_WORKER_STALE_SECONDS)
    return last is not None and timezone.now() - last <= stale_after


@register_collector
def _heartbeat_ages():
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
