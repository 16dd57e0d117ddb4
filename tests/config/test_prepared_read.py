"""config.db.PreparedRead: a read compiled once and run with new values returns what the ORM
returns for the same queryset, on SQLite and PostgreSQL alike."""

from datetime import timedelta

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from config.db import PreparedRead
from customers.models import Customer
from customers.selectors import customer_by_slug
from customers.services import api_key_create
from integrations.models import Integration
from integrations.selectors import customer_with_active_integration
from integrations.services import integration_create

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
    compiled = []
    original = PreparedRead._compile

    def counting(self, *args):
        compiled.append(args)
        return original(self, *args)

    monkeypatch.setattr(PreparedRead, "_compile", counting)
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
