"""An operator's hand on a circuit breaker (the admin's Close and Probe now): through the limit
store in use, so Redis and the database agree, and the table mirrors the result."""

import logging
import time

from django.utils import timezone

from integrations.deliveries.models import Delivery
from integrations.limits.selectors import breaker_held_deliveries
from integrations.limits.stores import limit_store
from integrations.limits.transitions import breaker_transitioned
from integrations.models import CircuitBreaker

__all__ = ("breaker_close", "breaker_probe_now")

logger = logging.getLogger(__name__)
State = CircuitBreaker.State


def breaker_close(*, breaker: CircuitBreaker) -> bool:
    """Close the breaker and forget its failures; held deliveries go at their deferred time
    (at most one cool-off away), spread as they were. False when it was already closed."""
    before = limit_store().breaker_control(
        breaker.provider_key, breaker.region, action="close", now=time.time()
    )
    logger.info(
        "limits.breaker_closed_by_operator provider=%s region=%s before=%s",
        breaker.provider_key,
        breaker.region,
        before,
    )
    breaker.refresh_from_db()
    if before != State.CLOSED:
        breaker_transitioned(
            provider=breaker.provider_key, region=breaker.region, state=State.CLOSED
        )
    return before != State.CLOSED


def breaker_probe_now(*, breaker: CircuitBreaker) -> Delivery | None:
    """End the cool-off now and make the held delivery that waited longest due at once, so it
    becomes the probe: a success closes the breaker, a failure opens it for another cool-off.
    Returns that delivery (None when nothing is held; the next send probes). A closed breaker
    is refused with ``ValueError``."""
    before = limit_store().breaker_control(
        breaker.provider_key, breaker.region, action="probe", now=time.time()
    )
    breaker.refresh_from_db()
    if before == State.CLOSED:
        raise ValueError("The breaker is closed: sends already go through.")
    first = breaker_held_deliveries(breaker=breaker).order_by("next_attempt_at", "pk").first()
    if first is not None:
        Delivery.objects.filter(pk=first.pk, status=Delivery.Status.PENDING).update(
            next_attempt_at=timezone.now(), updated_at=timezone.now()
        )
    logger.info(
        "limits.breaker_probe_by_operator provider=%s region=%s delivery=%s",
        breaker.provider_key,
        breaker.region,
        first.pk if first else None,
    )
    return first
