"""The dashboard's operational figures (queue, breakers, dead letters, credentials in grace,
heartbeats), each linked to the admin list behind it. Every one is an index read: a range of
``delivery_due`` or ``delivery_finished``, a breaker row, a few credential versions.

Higher layers add sections with ``section_add`` from their ``AppConfig.ready()`` (the webhooks
app: inbound dead letters and rejected signatures); this module imports none of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from config.admin_tools import change_url, when
from credentials.models import CredentialVersion
from integrations.dashboard.traffic import Window, trend
from integrations.deliveries.models import Delivery
from integrations.limits.selectors import breaker_held_deliveries
from integrations.models import CircuitBreaker, ProcessHeartbeat

__all__ = (
    "GRACE_USE_WINDOW",
    "Figure",
    "Section",
    "builtin_sections",
    "changelist",
    "section_add",
    "sections",
)

Status = Delivery.Status
# A previous credential version used this recently is "still used": a caller has not switched.
GRACE_USE_WINDOW = timedelta(hours=24)
BREAKERS_SHOWN = 20
CREDENTIALS_SHOWN = 20


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    link: str = ""
    alarm: bool = False
    note: str = ""


@dataclass
class Section:
    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    trend: list[int] | None = None
    trend_label: str = ""
    chart: str = ""


SectionBuilder = Callable[[datetime, Window], Section]
_sections: dict[str, SectionBuilder] = {}


def section_add(key: str, build: SectionBuilder) -> None:
    """Show ``build(now, window)`` on the dashboard, after the built-in sections."""
    if key in _sections:
        raise RuntimeError(f"Dashboard section '{key}' is added twice")
    _sections[key] = build


def changelist(model_label: str, **params) -> str:
    url = reverse(f"admin:{model_label.replace('.', '_')}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _queue(now: datetime, window: Window) -> Section:
    pending = Delivery.objects.filter(status=Status.PENDING)
    due = pending.filter(next_attempt_at__lte=now)
    oldest = due.order_by("next_attempt_at", "pk").values_list("pk", "next_attempt_at").first()
    lag = (now - oldest[1]).total_seconds() if oldest else 0
    figures = [
        Figure(
            "Queued",
            str(pending.count()),
            changelist("integrations.delivery", status__exact="pending"),
        ),
        Figure(
            "Due now",
            str(due.count()),
            changelist(
                "integrations.delivery",
                status__exact="pending",
                next_attempt_at__lte=now.isoformat(),
            ),
            alarm=lag > settings.SWITCHYARD_WORKER_STALE_SECONDS,
        ),
        Figure(
            "Oldest due",
            f"{lag:.0f} s late" if oldest else "-",
            change_url(Delivery(pk=oldest[0])) if oldest else "",
            alarm=lag > settings.SWITCHYARD_WORKER_STALE_SECONDS,
            note=when(oldest[1]) if oldest else "",
        ),
        Figure(
            "In flight",
            str(Delivery.objects.filter(status=Status.IN_FLIGHT).count()),
            changelist("integrations.delivery", status__exact="in_flight"),
        ),
    ]
    return Section("queue", "Delivery queue", figures)


def _breakers(now: datetime, window: Window) -> Section:
    open_ = CircuitBreaker.objects.exclude(state=CircuitBreaker.State.CLOSED).order_by(
        "first_opened_at", "pk"
    )
    figures = []
    for breaker in open_[:BREAKERS_SHOWN]:
        held = breaker_held_deliveries(breaker=breaker).count()
        since = breaker.first_opened_at or breaker.opened_at
        figures.append(
            Figure(
                f"{breaker.provider_key}/{breaker.region or '-'} {breaker.get_state_display()}",
                f"{held} held",
                changelist("integrations.delivery", held_by=breaker.pk),
                alarm=True,
                note=f"since {when(since)}",
            )
        )
    if not figures:
        figures.append(
            Figure("All breakers closed", "0 open", changelist("integrations.circuitbreaker"))
        )
    return Section("breakers", "Open circuit breakers", figures)


def _dead_letters(now: datetime, window: Window) -> Section:
    dead = Delivery.objects.filter(status=Status.DEAD)
    recent = trend(dead, "finished_at", window, now)
    total = dead.count()
    figures = [
        Figure("Dead letters", str(total), changelist("integrations.deadletter"), alarm=total > 0),
        Figure(
            f"New in {window.label}",
            str(sum(recent)),
            changelist("integrations.deadletter", finished_at__gte=window.since(now).isoformat()),
            alarm=sum(recent) > 0,
        ),
    ]
    return Section("dead_letters", "Delivery dead letters", figures, recent, "dead per bucket")


def _credentials(now: datetime, window: Window) -> Section:
    used = (
        CredentialVersion.objects.filter(
            state=CredentialVersion.State.PREVIOUS, last_used_at__gte=now - GRACE_USE_WINDOW
        )
        .select_related("credential")
        .order_by("grace_until")
    )
    figures = [
        Figure(
            f"{version.credential} v{version.version}",
            f"used {when(version.last_used_at)}",
            change_url(version.credential),
            alarm=True,
            note=f"grace until {when(version.grace_until)}",
        )
        for version in used[:CREDENTIALS_SHOWN]
    ]
    if not figures:
        figures.append(
            Figure("No previous version used in 24 h", "0", changelist("credentials.credential"))
        )
    return Section("credentials", "Credentials in grace still used", figures)


def _heartbeats(now: datetime, window: Window) -> Section:
    stale = settings.SWITCHYARD_WORKER_STALE_SECONDS
    figures = []
    for role, label in ProcessHeartbeat.Role.choices:
        last = (
            ProcessHeartbeat.objects.filter(role=role)
            .order_by("-seen_at")
            .values_list("seen_at", flat=True)
            .first()
        )
        age = (now - last).total_seconds() if last else None
        figures.append(
            Figure(
                f"{label} heartbeat",
                "never" if age is None else f"{age:.0f} s ago",
                changelist("integrations.processheartbeat", role__exact=role),
                alarm=age is None or age > stale,
            )
        )
    return Section("heartbeats", "Processes", figures)


def builtin_sections() -> list[SectionBuilder]:
    return [_queue, _breakers, _dead_letters, _credentials, _heartbeats]


def sections(now: datetime, window: Window) -> list[Section]:
    return [build(now, window) for build in [*builtin_sections(), *_sections.values()]]
