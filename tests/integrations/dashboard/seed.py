"""A small data set whose dashboard figures are known exactly (times relative to now, kept
away from bucket edges that matter: the last hour is read in minutes, the rest in hours)."""

from datetime import timedelta

from django.utils import timezone

from credentials.models import CredentialVersion
from credentials.services import credential_create
from integrations.dashboard.rollups import delivery_rollups_advance
from integrations.heartbeats import heartbeat_record
from integrations.models import CircuitBreaker, Delivery, DeliveryAttempt
from webhooks.models import InboundEvent, WebhookEndpoint

HELD = "Deferred until later: circuit breaker of trello/eu is open (HTTP 502)"


def delivery_add(customer, provider="trello", **fields):
    return Delivery.objects.create(
        customer=customer,
        action=f"{provider}.call",
        provider_key=provider,
        operation="call",
        input={},
        attempt_limit=5,
        **fields,
    )


def attempts_add(delivery, ago, *runs):
    """``runs``: (duration ms, outcome) of attempts that started ``ago``."""
    for number, (duration, outcome) in enumerate(runs, start=1):
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=timezone.now() - ago,
            duration_ms=duration,
            outcome=outcome,
        )


def seed_traffic(acme, globex):
    """1 h: 4 trello attempts of acme (3 succeed; 40, 80, 90, 3000 ms). 24 h: also 2 stripe
    attempts of globex (200 ms ok, 600 ms terminal). 7 d: also 1 trello of globex (20 ms ok).
    One more, 9 days old, is outside every window."""
    attempts_add(
        delivery_add(acme, status="succeeded"),
        timedelta(minutes=10),
        (40, "success"),
        (80, "success"),
        (90, "success"),
        (3000, "retryable"),
    )
    attempts_add(
        delivery_add(globex, "stripe", status="dead"),
        timedelta(hours=3),
        (200, "success"),
        (600, "terminal"),
    )
    attempts_add(delivery_add(globex, status="succeeded"), timedelta(days=3), (20, "success"))
    attempts_add(delivery_add(globex, status="succeeded"), timedelta(days=9), (20, "success"))
    delivery_rollups_advance()  # notes the highest attempt id
    delivery_rollups_advance()  # rolls up to it


def seed_operations(acme, globex):
    """Queue: 3 pending (2 due, the oldest 120 s late), 1 in flight. An open trello/eu breaker
    (since 1 h) holds 2 of them. Dead letters: 2 deliveries (30 min and 5 h ago), 2 inbound
    events (20 min and 2 days ago). A previous credential version used an hour ago. A worker
    heartbeat now, no dispatcher's."""
    now = timezone.now()
    for late, error in ((120, HELD), (5, HELD), (-3600, "")):
        delivery_add(acme, next_attempt_at=now - timedelta(seconds=late), last_error=error)
    delivery_add(acme, status="in_flight")
    for ago in (timedelta(minutes=30), timedelta(hours=5)):
        delivery_add(acme, status="dead", finished_at=now - ago, dead_reason="attempts_exhausted")
    breaker = CircuitBreaker.objects.create(
        provider_key="trello",
        region="eu",
        state="open",
        first_opened_at=now - timedelta(hours=1),
        opened_at=now - timedelta(minutes=1),
        open_until=now + timedelta(minutes=4),
    )
    endpoint = WebhookEndpoint.objects.create(customer=globex, provider="stripe")
    for n, ago in enumerate((timedelta(minutes=20), timedelta(days=2))):
        event = InboundEvent.objects.create(
            endpoint=endpoint,
            provider="stripe",
            external_id=f"evt_{n}",
            status="dead",
            body=b"",
            attempt_limit=5,
        )
        InboundEvent.objects.filter(pk=event.pk).update(received_at=now - ago)
    credential = credential_create(
        provider="trello",
        purpose="api",
        customer=acme,
        fields={"api_key": "a" * 32, "token": "b" * 64},
    )
    CredentialVersion.objects.filter(credential=credential).update(
        state="previous",
        last_used_at=now - timedelta(hours=1),
        grace_until=now + timedelta(hours=2),
    )
    heartbeat_record(role="worker")
    return breaker, endpoint
