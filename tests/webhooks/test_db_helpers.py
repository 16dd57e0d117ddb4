"""config/db: the hot paths' INSERT and UPDATE helpers write what the ORM would, on both
databases (server-side binding on PostgreSQL), with Django's error translation and query
logging intact."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.test.utils import CaptureQueriesContext

from config.db import insert_many, insert_one, update_fields_many
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db

# Columns that differ between two rows by design: ids, the random key, the de-duplication id
# and the time of the INSERT.
OWN = {"id", "key", "external_id", "received_at"}
DUE = datetime(2026, 12, 1, 7, 30, 15, 123456, tzinfo=UTC)


def _values(endpoint, **values) -> dict:
    return {
        "endpoint": endpoint,
        "provider": "standard_webhooks",
        "external_id": values.pop("external_id", uuid.uuid4().hex),
        "body": b'{"type": "bench.ping", "data": {"n": 1}}',
        "headers": {"Content-Type": "application/json", "Webhook-Id": "msg_1"},
        "remote_ip": "203.0.113.7",
        "signature_version": 2,
        "attempt_limit": 8,
        "next_attempt_at": DUE,
        **values,
    }


def _event(endpoint, **values) -> InboundEvent:
    return InboundEvent(**_values(endpoint, **values))


@pytest.mark.parametrize(
    "extra",
    [
        {},  # a received event: defaults, and envelope, lease and processing columns NULL
        {"envelope": {"id": "evt_1"}, "lease_token": uuid.uuid4(), "error": "x", "attempts": 3},
    ],
    ids=["defaults-and-nulls", "every-column-set"],
)
def test_insert_one_writes_the_row_objects_create_writes(make_endpoint, extra):
    """The contract with Django that insert_one relies on, on SQLite and PostgreSQL alike (run
    this file with DATABASE_URL set for the latter): for the same field values it writes the row
    ``objects.create`` writes, defaults included; the instance gets the pk the database assigned
    and is marked saved; a Python default (``key``) and an ``auto_now_add`` (``received_at``) are
    written as the instance holds them."""
    endpoint = make_endpoint("standard_webhooks")
    by_orm = InboundEvent.objects.create(**_values(endpoint, **extra))
    by_helper = _event(endpoint, **extra)
    insert_one(by_helper)

    assert by_helper.pk == InboundEvent.objects.latest("pk").pk > by_orm.pk
    assert (by_helper._state.adding, by_helper._state.db) == (False, "default")
    rows = {row["id"]: row for row in InboundEvent.objects.values()}
    assert _own_removed(rows[by_helper.pk]) == _own_removed(rows[by_orm.pk])
    written = rows[by_helper.pk]
    assert (written["key"], written["received_at"]) == (by_helper.key, by_helper.received_at)
    assert written["external_id"] == by_helper.external_id
    assert bytes(written["body"]) == bytes(by_helper.body)


def _own_removed(row: dict) -> dict:
    return {name: value for name, value in row.items() if name not in OWN}


def test_insert_one_is_one_logged_statement(make_endpoint):
    event = _event(make_endpoint("standard_webhooks"))
    with CaptureQueriesContext(connection) as queries:
        insert_one(event)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    assert "webhooks_inboundevent" in inserts[0]


def test_a_duplicate_raises_djangos_integrity_error_and_spoils_nothing(make_endpoint):
    endpoint = make_endpoint("standard_webhooks")
    insert_one(_event(endpoint, external_id="evt_same"))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_one(_event(endpoint, external_id="evt_same"))
    # The surrounding transaction goes on.
    insert_one(_event(endpoint, external_id="evt_other"))
    assert InboundEvent.objects.filter(endpoint=endpoint).count() == 2


def test_a_quiet_conflict_raises_all_the_same_and_needs_no_savepoint(make_endpoint):
    """ON CONFLICT DO NOTHING: the database reports no error (a client's repeated key fills no
    server log), the caller still gets IntegrityError, and the transaction is not aborted."""
    endpoint = make_endpoint("standard_webhooks")
    insert_one(_event(endpoint, external_id="evt_same"), quiet_conflict=True)
    with pytest.raises(IntegrityError):
        insert_one(_event(endpoint, external_id="evt_same"), quiet_conflict=True)
    insert_one(_event(endpoint, external_id="evt_other"), quiet_conflict=True)
    assert InboundEvent.objects.filter(endpoint=endpoint).count() == 2


def test_an_expression_value_is_saved_by_the_orm(make_endpoint):
    event = _event(make_endpoint("standard_webhooks"), attempts=Value(4))
    insert_one(event)
    assert InboundEvent.objects.get(pk=event.pk).attempts == 4


def test_update_fields_many_writes_each_rows_values(make_endpoint):
    endpoint = make_endpoint("standard_webhooks")
    events = [_event(endpoint) for _ in range(3)]
    for event in events:
        insert_one(event)
    for n, event in enumerate(events):
        event.status, event.envelope, event.error = "processed", {"n": n}, f"e{n}"
    with CaptureQueriesContext(connection) as queries:
        update_fields_many(events, ["status", "envelope", "error"])
    # Django logs an executemany as "3 times: UPDATE ...".
    assert [q["sql"].split(": ", 1)[0] for q in queries.captured_queries] == ["3 times"]
    assert [(e.status, e.envelope, e.error) for e in InboundEvent.objects.order_by("pk")] == [
        ("processed", {"n": n}, f"e{n}") for n in range(3)
    ]


def test_insert_many_writes_the_rows_bulk_create_writes(make_endpoint):
    """Long texts with quotes, backslashes and NULL columns included (Django's bulk_create sends
    them as arrays on PostgreSQL): the same rows, in one logged executemany."""
    endpoint = make_endpoint("standard_webhooks")
    extras = [
        {},
        {"envelope": {"q": 'a "quoted" \\ value' * 40}, "error": "x\ny", "attempts": 3},
        {"lease_token": uuid.uuid4(), "headers": {"Say": '"hi"'}},
    ]
    by_orm = InboundEvent.objects.bulk_create([_event(endpoint, **extra) for extra in extras])
    by_helper = [_event(endpoint, **extra) for extra in extras]
    with CaptureQueriesContext(connection) as queries:
        insert_many(by_helper)

    assert [q["sql"].split(": ", 1)[0] for q in queries.captured_queries] == ["3 times"]
    rows = {row["id"]: row for row in InboundEvent.objects.values()}
    written = sorted(set(rows) - {event.pk for event in by_orm})
    assert len(written) == 3
    for orm_event, pk, helper_event in zip(by_orm, written, by_helper, strict=True):
        assert _own_removed(rows[pk]) == _own_removed(rows[orm_event.pk])
        assert (rows[pk]["key"], rows[pk]["received_at"]) == (
            helper_event.key,
            helper_event.received_at,
        )


def test_insert_many_leaves_an_expression_to_bulk_create(make_endpoint):
    endpoint = make_endpoint("standard_webhooks")
    insert_many([_event(endpoint), _event(endpoint, attempts=Value(4))])
    assert sorted(e.attempts for e in InboundEvent.objects.all()) == [0, 4]


def test_insert_many_refused_row_raises_and_spoils_nothing(make_endpoint):
    endpoint = make_endpoint("standard_webhooks")
    insert_one(_event(endpoint, external_id="evt_same"))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_many([_event(endpoint), _event(endpoint, external_id="evt_same")])
    insert_many([_event(endpoint)])
    assert InboundEvent.objects.filter(endpoint=endpoint).count() == 2
