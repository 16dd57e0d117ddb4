"""Retention (DESIGN §11): finished rows past SWITCHYARD_RETAIN_*_DAYS go in small batches, what a
live row still refers to stays, and ``manage.py purge`` says per table what goes."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from credentials.models import CredentialAuditEntry
from credentials.services import credential_create
from customers.lifecycle import retention, retention_purge, retention_rules
from customers.models import ApiKeyAuditEntry
from customers.services import api_key_create
from integrations.deliveries.models import SEND_ACTION, Delivery, DeliveryAttempt
from integrations.dispatcher import default_steps
from integrations.lifecycle import FINISHED_DELIVERIES
from tests.customers.lifecycle_data import attempt_add, delivery_add, event_add
from webhooks.models import InboundEvent
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def retain(settings, monkeypatch):
    monkeypatch.setattr(retention, "_window", {"started": float("-inf"), "spent": 0.0})
    settings.SWITCHYARD_RETAIN_SUCCEEDED_DAYS = 30
    settings.SWITCHYARD_RETAIN_DEAD_DAYS = 90
    settings.SWITCHYARD_RETAIN_INBOUND_DAYS = 30
    settings.SWITCHYARD_RETAIN_AUDIT_DAYS = 365


@pytest.fixture
def endpoint(acme):
    signing = credential_create(
        provider="trello", purpose="webhook_signing", customer=acme, fields={"secret": "s"}
    )
    return endpoint_create(customer=acme, provider="trello", credential=signing)


def purge_all() -> dict[str, int]:
    totals = {}
    for rule in retention_rules():
        for table, count in retention_purge(rule).items():
            totals[table] = totals.get(table, 0) + count
    return totals


def fan_out(customer, event, *, status, age_days):
    return delivery_add(
        customer,
        status=status,
        age_days=age_days,
        action=SEND_ACTION,
        provider_key="standard_webhooks",
        operation="send",
        input={"subscription": 1, "event": event.pk},
    )


def test_finished_deliveries_past_retention_go_with_their_attempts(acme):
    gone = [
        delivery_add(acme, status="succeeded", age_days=31),
        delivery_add(acme, status="cancelled", age_days=31),
        delivery_add(acme, status="dead", age_days=91),
    ]
    kept = [
        delivery_add(acme, status="succeeded", age_days=29),
        delivery_add(acme, status="dead", age_days=31),  # a dead letter may still be retried
        delivery_add(acme, status="pending", age_days=100),
        delivery_add(acme, status="in_flight", age_days=100),
        # Its Idempotency-Key is still honoured: upkeep forgets the key first.
        delivery_add(acme, status="succeeded", age_days=31, idempotency_key="k"),
    ]
    for delivery in gone + kept:
        attempt_add(delivery, number=1)
        attempt_add(delivery, number=2)

    assert purge_all() == {"integrations_delivery": 3, "integrations_deliveryattempt": 6}
    assert set(Delivery.objects.values_list("pk", flat=True)) == {d.pk for d in kept}
    assert DeliveryAttempt.objects.count() == 2 * len(kept)
    assert purge_all() == {}


def test_an_inbound_event_stays_while_a_delivery_refers_to_it(acme, endpoint):
    referred = event_add(endpoint, status="processed", age_days=31)
    dead_letter = fan_out(acme, referred, status="dead", age_days=10)
    unreferred = event_add(endpoint, status="processed", age_days=31)
    ignored = event_add(endpoint, status="ignored", age_days=31)
    kept = [
        event_add(endpoint, status="processed", age_days=29),
        event_add(endpoint, status="dead", age_days=31),  # may be replayed until 90 days
        event_add(endpoint, status="failed", age_days=100),  # still being retried
        event_add(endpoint, status="received", age_days=100),
    ]
    gone_dead = event_add(endpoint, status="dead", age_days=91)

    assert purge_all() == {"webhooks_inboundevent": 3}
    remaining = set(InboundEvent.objects.values_list("pk", flat=True))
    assert remaining == {referred.pk, *(e.pk for e in kept)}
    assert not {unreferred.pk, ignored.pk, gone_dead.pk} & remaining

    # Once the dead letter itself has gone, nothing refers to the event any more.
    Delivery.objects.filter(pk=dead_letter.pk).update(
        finished_at=timezone.now() - timedelta(days=91)
    )
    assert purge_all() == {"integrations_delivery": 1, "webhooks_inboundevent": 1}
    assert not InboundEvent.objects.filter(pk=referred.pk).exists()


def test_audit_entries_past_retention_go(acme):
    credential = credential_create(
        provider="http", purpose="api", customer=acme, fields={"token": "t"}
    )
    key, _ = api_key_create(name="app", customers=[acme])
    old = timezone.now() - timedelta(days=366)
    CredentialAuditEntry.objects.filter(credential=credential).update(created_at=old)
    ApiKeyAuditEntry.objects.filter(api_key=key).update(created_at=old)
    key_entry = ApiKeyAuditEntry.objects.create(api_key=key, action="change", actor="system")

    assert purge_all() == {"credentials_credentialauditentry": 1, "customers_apikeyauditentry": 1}
    assert list(ApiKeyAuditEntry.objects.all()) == [key_entry]


def test_zero_days_keeps_that_kind_forever(acme, settings):
    settings.SWITCHYARD_RETAIN_SUCCEEDED_DAYS = 0
    delivery_add(acme, status="succeeded", age_days=3000)
    assert purge_all() == {}
    assert Delivery.objects.count() == 1


def test_each_batch_is_its_own_small_transaction(acme):
    for _ in range(5):
        attempt_add(delivery_add(acme, status="succeeded", age_days=31))
    batches = []

    counts = retention_purge(
        FINISHED_DELIVERIES, batch=2, on_batch=lambda seconds, c: batches.append(c)
    )

    assert counts == {"integrations_delivery": 5, "integrations_deliveryattempt": 5}
    assert [b["integrations_delivery"] for b in batches] == [2, 2, 1]


def test_purge_command_prints_per_table_and_dry_run_deletes_nothing(acme):
    for age in (31, 31, 1):
        attempt_add(delivery_add(acme, status="succeeded", age_days=age))
    out = StringIO()

    call_command("purge", "--dry-run", stdout=out)

    lines = out.getvalue().splitlines()
    assert "integrations_delivery: would delete 2" in lines
    assert "integrations_deliveryattempt: would delete 2" in lines
    assert "webhooks_inboundevent: would delete 0" in lines
    assert Delivery.objects.count() == 3

    out = StringIO()
    call_command("purge", stdout=out)

    lines = out.getvalue().splitlines()
    assert "integrations_delivery: deleted 2" in lines
    assert "total: deleted 4 rows" in lines
    assert Delivery.objects.count() == 1


def test_the_dispatcher_runs_each_rule_as_a_step(acme):
    steps = {step.name: step for step in default_steps()}
    assert {
        "purge_deliveries_succeeded",
        "purge_deliveries_dead",
        "purge_inbound_events",
        "purge_inbound_events_dead",
        "purge_credential_audit",
        "purge_api_key_audit",
    } <= set(steps)
    delivery_add(acme, status="succeeded", age_days=31)

    assert steps["purge_deliveries_succeeded"].run() == {"integrations_delivery": 1}
    assert steps["purge_deliveries_succeeded"].run() == {}


def test_the_steps_share_one_budget_per_interval(acme, monkeypatch):
    steps = {step.name: step for step in default_steps()}
    delivery_add(acme, status="succeeded", age_days=31)
    monkeypatch.setattr(retention, "_window", {"started": float("inf"), "spent": 0.0})
    monkeypatch.setattr(retention, "STEP_BUDGET_SECONDS", 0.0)

    assert steps["purge_deliveries_succeeded"].run() == {}
    assert Delivery.objects.count() == 1
