"""The webhooks app's part of the admin dashboard: inbound dead letters with their trend, the
inbound queue, and rejected signatures. Rejected signatures are already counted by the
receiver (one UPDATE of the endpoint row per refusal, which it makes anyway); the dashboard's
rollup step records how much that total grew per minute, so the receiver does no more work."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Sum

from integrations.dashboard import Figure, Section, Window, changelist, trend
from integrations.models import CounterRollup
from webhooks.models import InboundEvent, WebhookEndpoint

__all__ = ("REJECTED_SIGNATURES", "inbound_section", "rejected_signatures_total")

REJECTED_SIGNATURES = "webhooks.rejected_signatures"
Status = InboundEvent.Status


def rejected_signatures_total() -> int:
    """The counter's total (endpoints are few: a sum over their rows)."""
    return WebhookEndpoint.objects.aggregate(n=Sum("rejected_signatures"))["n"] or 0


def inbound_section(now: datetime, window: Window) -> Section:
    dead = InboundEvent.objects.filter(status=Status.DEAD)
    recent = trend(dead, "received_at", window, now)
    waiting = InboundEvent.objects.filter(status__in=[Status.RECEIVED, Status.FAILED])
    rejected = (
        CounterRollup.objects.filter(
            name=REJECTED_SIGNATURES, bucket__gte=window.since(now)
        ).aggregate(n=Sum("count"))["n"]
        or 0
    )
    figures = [
        Figure(
            "Inbound dead letters",
            str(dead.count()),
            changelist("webhooks.deadinboundevent"),
            alarm=sum(recent) > 0,
        ),
        Figure(
            f"New in {window.label}",
            str(sum(recent)),
            changelist("webhooks.deadinboundevent", received_at__gte=window.since(now).isoformat()),
            alarm=sum(recent) > 0,
        ),
        Figure(
            "Waiting to be processed",
            str(waiting.count()),
            changelist("webhooks.inboundevent", status__in="received,failed"),
        ),
        Figure(
            f"Rejected signatures in {window.label}",
            str(rejected),
            changelist("webhooks.webhookendpoint", rejected_signatures__gt=0),
            alarm=rejected > 0,
            note=f"{rejected_signatures_total()} since the endpoints were created",
        ),
    ]
    return Section("inbound", "Inbound events", figures, recent, "inbound dead letters per bucket")
