"""Reads for regions and customers, always through an API key's customer restriction."""

from django.db.models import QuerySet

from config.db import one_or_none
from config.prepared import PreparedRead
from customers.models import ApiKey, Customer, Region

__all__ = (
    "customer_by_slug",
    "customer_get",
    "customer_list",
    "customers_limited_to_key",
    "customers_visible_to",
    "region_list",
)


def region_list() -> QuerySet[Region]:
    return Region.objects.all()


def customers_visible_to(api_key: ApiKey | None) -> QuerySet[Customer]:
    """Every customer for an unrestricted key; only its own for a restricted one."""
    customers = Customer.objects.select_related("region")
    if api_key is not None and api_key.customer_limited:
        customers = customers_limited_to_key(customers, api_key.pk)
    return customers


def customers_limited_to_key(customers: QuerySet[Customer], api_key_id: int) -> QuerySet[Customer]:
    """The customers a customer-limited key may reach, of ``customers``."""
    return customers.filter(api_keys=api_key_id)


_BY_SLUG = PreparedRead(lambda slug: Customer.objects.filter(slug=slug).order_by())
_BY_SLUG_FOR_LIMITED_KEY = PreparedRead(
    lambda slug, api_key_id: customers_limited_to_key(
        Customer.objects.filter(slug=slug), api_key_id
    )
)


def customer_list(*, api_key: ApiKey | None, filters: dict | None = None) -> QuerySet[Customer]:
    customers = customers_visible_to(api_key)
    filters = filters or {}
    if region := filters.get("region"):
        customers = customers.filter(region__code=region)
    if tier := filters.get("tier"):
        customers = customers.filter(tier=tier)
    if (active := filters.get("active")) is not None:
        customers = customers.filter(active=active)
    return customers


def customer_get(*, api_key: ApiKey | None, slug: str) -> Customer | None:
    return one_or_none(customers_visible_to(api_key).filter(slug=slug))


def customer_by_slug(*, api_key: ApiKey | None, slug: str) -> Customer | None:
    """``customer_get`` for a hot path (accepting a delivery): one prepared query, under the
    same restriction, without the region."""
    if api_key is not None and api_key.customer_limited:
        found = _BY_SLUG_FOR_LIMITED_KEY.objects(slug=slug, api_key_id=api_key.pk)
    else:
        found = _BY_SLUG.objects(slug=slug)
    return found[0] if found else None
