"""The rollup step: each committed attempt counted once, incrementally, a run behind the
highest id (a slower transaction may still commit a lower one); rollups follow retention."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.lifecycle import retention_purge
from integrations.dashboard.rollups import (
    COUNTER_ROLLUPS,
    DELIVERY_ROLLUPS,
    delivery_rollups_advance,
)
from integrations.dispatcher import default_steps
from integrations.models import CounterRollup, DeliveryRollup
from tests.integrations.dashboard.seed import attempts_add, delivery_add

pytestmark = pytest.mark.django_db

HOUR = DeliveryRollup.Span.HOUR


def _hourly_attempts() -> int:
    return sum(DeliveryRollup.objects.filter(span=HOUR).values_list("attempts", flat=True))


def test_attempts_are_rolled_up_a_run_behind_the_highest_id(acme):
    delivery = delivery_add(acme, status="succeeded")
    attempts_add(delivery, timedelta(minutes=5), (10, "success"), (20, "retryable"))
    assert delivery_rollups_advance() == 0  # notes the highest id only
    assert delivery_rollups_advance() == 2
    assert _hourly_attempts() == 2
    later = delivery_add(acme, status="succeeded")
    attempts_add(later, timedelta(minutes=1), (30, "success"))
    assert delivery_rollups_advance() == 0
    assert delivery_rollups_advance() == 1
    assert delivery_rollups_advance() == 0
    assert _hourly_attempts() == 3
    minutes = DeliveryRollup.objects.filter(span=DeliveryRollup.Span.MINUTE)
    assert sum(r.attempts for r in minutes) == 3
    hours = DeliveryRollup.objects.filter(span=HOUR)
    assert sum(r.succeeded for r in hours) == 2
    assert sum(r.duration_ms for r in hours) == 60


def test_old_attempts_get_hours_but_no_minutes(acme):
    attempts_add(delivery_add(acme, status="succeeded"), timedelta(days=2), (10, "success"))
    delivery_rollups_advance()
    delivery_rollups_advance()
    assert _hourly_attempts() == 1
    assert not DeliveryRollup.objects.filter(span=DeliveryRollup.Span.MINUTE).exists()


def test_rollups_follow_the_retention_settings(acme, settings):
    settings.SWITCHYARD_RETAIN_SUCCEEDED_DAYS = 30
    settings.SWITCHYARD_RETAIN_INBOUND_DAYS = 30
    now = timezone.now()
    for days in (31, 29):
        DeliveryRollup.objects.create(
            bucket=now - timedelta(days=days), span=HOUR, provider_key="trello", customer=acme
        )
        CounterRollup.objects.create(bucket=now - timedelta(days=days), name="x", count=1)
    assert retention_purge(DELIVERY_ROLLUPS) == {"integrations_deliveryrollup": 1}
    assert retention_purge(COUNTER_ROLLUPS) == {"integrations_counterrollup": 1}
    assert DeliveryRollup.objects.count() == CounterRollup.objects.count() == 1
    names = {step.name for step in default_steps()}
    assert {"rollup_dashboard", "purge_delivery_rollups", "purge_counter_rollups"} <= names
