"""Figures for the admin dashboard: what an on-call engineer looks at first."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from integrations.heartbeats import worker_last_seen
from integrations.models import Delivery, DeliveryAttempt

__all__ = ("DashboardFigure", "dashboard_figures")

WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class DashboardFigure:
    label: str
    value: str
    link: str = ""
    alarm: bool = False


def _delivery_figures(now) -> list[DashboardFigure]:
    counts = Delivery.objects.aggregate(
        queued=Count("id", filter=Q(status=Delivery.Status.PENDING)),
        due=Count("id", filter=Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now)),
        in_flight=Count("id", filter=Q(status=Delivery.Status.IN_FLIGHT)),
        dead=Count("id", filter=Q(status=Delivery.Status.DEAD)),
    )
    attempts = DeliveryAttempt.objects.filter(started_at__gte=now - WINDOW).aggregate(
        total=Count("id"), ok=Count("id", filter=Q(outcome="success"))
    )
    rate = f"{100 * attempts['ok'] / attempts['total']:.1f} %" if attempts["total"] else "-"
    changelist = reverse("admin:integrations_delivery_changelist")
    return [
        DashboardFigure("Queued deliveries", str(counts["queued"]), f"{changelist}?status=pending"),
        DashboardFigure("Due now", str(counts["due"]), alarm=counts["due"] > 1000),
        DashboardFigure("In flight", str(counts["in_flight"]), f"{changelist}?status=in_flight"),
        DashboardFigure(
            "Dead letters",
            str(counts["dead"]),
            reverse("admin:integrations_deadletter_changelist"),
            alarm=counts["dead"] > 0,
        ),
        DashboardFigure(
            "Attempt success (1 h)",
            f"{rate} of {attempts['total']}",
            alarm=bool(attempts["total"]) and attempts["ok"] < attempts["total"] * 0.9,
        ),
    ]


def _worker_figure(now) -> DashboardFigure:
    last = worker_last_seen()
    if last is None:
        return DashboardFigure("Worker heartbeat", "never", alarm=True)
    age = (now - last).total_seconds()
    return DashboardFigure("Worker heartbeat", f"{age:.0f} s ago", alarm=age > 60)


def dashboard_figures() -> list[DashboardFigure]:
    now = timezone.now()
    return [*_delivery_figures(now), _worker_figure(now)]
