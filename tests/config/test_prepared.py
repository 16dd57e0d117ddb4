"""config.prepared: a statement compiled once and run with new values reads and writes what the
ORM does for the same queryset, on SQLite and PostgreSQL alike."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.prepared import PreparedRead, PreparedUpdate
from customers.models import Customer
from customers.selectors import customer_by_slug
from customers.services import api_key_create
from integrations.deliveries.models import Delivery
from integrations.models import Integration
from integrations.selectors import customer_with_active_integration
from integrations.services import integration_create
from tests.compiled import compiles

pytestmark = pytest.mark.django_db

BY_SLUG = PreparedRead(lambda slug: Customer.objects.filter(slug=slug).order_by())


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_objects_are_the_rows_the_orm_reads(acme, globex):
    for customer in (acme, globex):
        [found] = BY_SLUG.objects(slug=customer.slug)
        assert _fields(found) == _fields(Customer.objects.get(pk=customer.pk))
        assert found._state.adding is False and found._state.db == "default"
    assert BY_SLUG.objects(slug="nobody") == []


def test_values_come_back_through_the_orms_converters(acme):
    """JSON, datetimes and booleans as the ORM gives them, not as the database driver does."""
    integration = integration_create(
        customer=acme,
        provider_key="http",
        config={"base_url": "https://api.example.com", "rate_limit": {"rate": 5, "per_seconds": 1}},
    )
    read = PreparedRead(
        lambda customer_id: Integration.objects.filter(customer=customer_id, active=True)
    )
    [found] = read.objects(customer_id=acme.pk)
    assert found.config == Integration.objects.get(pk=integration.pk).config
    assert found.created_at == integration.created_at and found.created_at.tzinfo is not None
    assert found.active is True


def test_one_statement_serves_every_value(acme, globex, monkeypatch):
    read = PreparedRead(lambda slug: Customer.objects.filter(slug=slug))
    compiled = compiles(monkeypatch, PreparedRead)
    assert [c.pk for c in read.objects(slug="acme")] == [acme.pk]
    assert [c.pk for c in read.objects(slug="globex")] == [globex.pk]
    assert len(compiled) == 1


def test_literals_get_a_statement_each(acme, globex):
    read = PreparedRead(
        lambda slug, limit: Customer.objects.exclude(slug=slug).values_list("pk")[:limit],
        literals=("limit",),
    )
    assert len(read.rows(slug="nobody", limit=1)) == 1
    assert len(read.rows(slug="nobody", limit=5)) == 2
    with pytest.raises(TypeError, match="whole rows"):
        read.objects(slug="nobody", limit=5)


def test_now_compares_in_the_database(acme, globex):
    """SQLite's Now() has millisecond precision: rows a minute apart, not within one."""
    minute = timedelta(minutes=1)
    Customer.objects.filter(pk=acme.pk).update(created_at=timezone.now() - minute)
    Customer.objects.filter(pk=globex.pk).update(created_at=timezone.now() + minute)
    read = PreparedRead(lambda slug: Customer.objects.filter(slug=slug, created_at__lt=Now()))
    assert [c.pk for c in read.objects(slug="acme")] == [acme.pk]
    assert read.objects(slug="globex") == []


@pytest.mark.parametrize(
    ("build", "values", "error"),
    [
        (lambda slug: Customer.objects.filter(slug__icontains=slug), {"slug": "ac"}, ValueError),
        (lambda active: Customer.objects.filter(active=active), {"active": True}, TypeError),
        (lambda name: Customer.objects.filter(name=name), {"name": 1.5}, TypeError),
        (lambda name: Customer.objects.filter(name=name), {"name": None}, TypeError),
        (lambda ids: Customer.objects.filter(pk__in=ids), {"ids": []}, ValueError),
        # A naive time would be read in the server's zone: refused, as the ORM warns of it.
        (
            lambda at: Customer.objects.filter(created_at__lt=at),
            {"at": datetime(2026, 1, 1)},
            TypeError,
        ),
        (
            lambda at: Customer.objects.filter(created_at__date=at),
            {"at": datetime(2026, 1, 1, tzinfo=UTC)},
            ValueError,
        ),
    ],
)
def test_values_the_database_would_not_see_as_given_are_refused(acme, build, values, error):
    with pytest.raises(error):
        PreparedRead(build).objects(**values)


def test_customer_by_slug_keeps_a_limited_keys_restriction(acme, globex):
    limited, _ = api_key_create(name="acme-app", customers=[acme])
    unlimited, _ = api_key_create(name="crm")
    assert customer_by_slug(api_key=limited, slug="acme").pk == acme.pk
    assert customer_by_slug(api_key=limited, slug="globex") is None
    assert customer_by_slug(api_key=unlimited, slug="globex").pk == globex.pk
    assert customer_by_slug(api_key=None, slug="globex").pk == globex.pk
    assert customer_by_slug(api_key=unlimited, slug="nobody") is None


def test_customer_with_active_integration_reads_both_as_two_reads_would(acme, globex):
    """One query for the accept path: the customer under the key's restriction, and its
    active integration of the provider (none when inactive, absent or another provider's)."""
    limited, _ = api_key_create(name="acme-app", customers=[acme])
    config = {"base_url": "https://api.example.com", "rate_limit": {"rate": 5, "per_seconds": 1}}
    active = integration_create(customer=acme, provider_key="http", config=config)
    inactive = integration_create(customer=globex, provider_key="http", config=config)
    Integration.objects.filter(pk=inactive.pk).update(active=False)

    customer, integration = customer_with_active_integration(
        api_key=limited, slug="acme", provider_key="http"
    )
    assert _fields(customer) == _fields(Customer.objects.get(pk=acme.pk))
    assert _fields(integration) == _fields(Integration.objects.get(pk=active.pk))
    assert integration._state.adding is False and customer._state.adding is False
    assert customer_with_active_integration(
        api_key=limited, slug="globex", provider_key="http"
    ) == (None, None)
    customer, integration = customer_with_active_integration(
        api_key=None, slug="globex", provider_key="http"
    )
    assert customer.pk == globex.pk and integration is None
    customer, integration = customer_with_active_integration(
        api_key=None, slug="acme", provider_key="trello"
    )
    assert customer.pk == acme.pk and integration is None


def _delivery(customer, **fields) -> Delivery:
    return Delivery.objects.create(
        customer=customer,
        action="http.request",
        provider_key="http",
        operation="request",
        input={"path": "/x"},
        next_attempt_at=timezone.now(),
        attempt_limit=5,
        **fields,
    )


def test_uuids_times_and_lists_are_values_as_the_orm_prepares_them(acme, globex, monkeypatch):
    """A lease token (a native UUID on PostgreSQL, hex text on SQLite), a time (adapted by the
    backend) and a list of ids (one statement per length) find the rows the ORM finds."""
    token, other = uuid.uuid4(), uuid.uuid4()
    rows = [_delivery(acme, lease_token=token), _delivery(globex, lease_token=token)]
    rows.append(_delivery(acme, lease_token=other))
    read = PreparedRead(
        lambda ids, token, before: (
            Delivery.objects.filter(pk__in=ids, lease_token=token, created_at__lte=before)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    )
    compiled = compiles(monkeypatch, PreparedRead)
    ids = [row.pk for row in rows]
    for values in (
        {"ids": ids, "token": token, "before": timezone.now()},
        {"ids": ids, "token": other, "before": timezone.now()},
        {"ids": ids, "token": token, "before": timezone.now() - timedelta(days=1)},
        {"ids": ids[:1], "token": token, "before": timezone.now()},
        {"ids": ids[1:2], "token": token, "before": timezone.now()},
    ):
        prepared = [pk for (pk,) in read.rows(**values)]
        filters = {"pk__in": values["ids"], "lease_token": values["token"]}
        expected = Delivery.objects.filter(**filters, created_at__lte=values["before"])
        assert prepared == list(expected.order_by("pk").values_list("pk", flat=True)), values
    assert len(compiled) == 2  # three ids, then one


def test_objects_bring_their_select_related_rows_in_the_one_query(acme, globex):
    integration = integration_create(
        customer=acme, provider_key="http", config={"base_url": "https://api.example.com"}
    )
    with_integration = _delivery(acme, integration=integration)
    without = _delivery(globex)
    read = PreparedRead(
        lambda ids: (
            Delivery.objects.filter(pk__in=ids)
            .select_related("customer__region", "integration")
            .order_by("pk")
        )
    )
    read.objects(ids=[without.pk, with_integration.pk])  # compiled before counting
    with CaptureQueriesContext(connection) as queries:
        first, second = read.objects(ids=[with_integration.pk, without.pk])
        related = (first.customer.region, first.integration, second.customer.region)
        assert second.integration is None
    assert len(queries) == 1
    assert _fields(first) == _fields(Delivery.objects.get(pk=with_integration.pk))
    assert _fields(first.customer) == _fields(acme)
    assert [region.code for region in related[::2]] == ["eu", "us"]
    assert _fields(related[1]) == _fields(Integration.objects.get(pk=integration.pk))
    assert related[1].config == {"base_url": "https://api.example.com"}


def test_an_update_writes_what_the_orms_update_writes(acme, monkeypatch):
    """Expressions (F), NULLs, UUIDs and times, with a condition on a list of ids."""
    twins = [[_delivery(acme, enqueued_until=timezone.now()) for _ in range(3)] for _ in "ab"]
    claim = PreparedUpdate(
        lambda ids, token, until: (
            Delivery.objects.filter(pk__in=ids, status="pending"),
            {
                "status": "in_flight",
                "lease_token": token,
                "lease_until": until,
                "attempts": F("attempts") + 1,
                "enqueued_until": None,
            },
        )
    )
    compiled = compiles(monkeypatch, PreparedUpdate)
    token, until = uuid.uuid4(), timezone.now() + timedelta(seconds=30)
    prepared_ids, orm_ids = [d.pk for d in twins[0]], [d.pk for d in twins[1]]
    assert claim.run(ids=prepared_ids, token=token, until=until) == 3
    Delivery.objects.filter(pk__in=orm_ids, status="pending").update(
        status="in_flight",
        lease_token=token,
        lease_until=until,
        attempts=F("attempts") + 1,
        enqueued_until=None,
    )
    columns = ("status", "lease_token", "lease_until", "attempts", "enqueued_until")
    assert list(Delivery.objects.filter(pk__in=prepared_ids).values_list(*columns)) == list(
        Delivery.objects.filter(pk__in=orm_ids).values_list(*columns)
    )
    # Claimed already: the condition holds for none; the statement is the same one.
    assert claim.run(ids=prepared_ids, token=uuid.uuid4(), until=until) == 0
    assert len(compiled) == 1
