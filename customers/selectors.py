"""Reads for regions and customers, always through an API key's customer restriction."""

from django.db.models import QuerySet

from customers.models import ApiKey, Customer, Region

__all__ = ("customer_get", "customer_list", "customers_visible_to", "region_list")


def region_list() -> QuerySet[Region]:
    return Region.objects.all()


def customers_visible_to(api_key: ApiKey | None) -> QuerySet[Customer]:
    """Every customer for an unrestricted key; only its own for a restricted one."""
    customers = Customer.objects.select_related("region")
    if api_key is not None and api_key.customer_limited:
        customers = customers.filter(api_keys=api_key)
    return customers


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
    return customers_visible_to(api_key).filter(slug=slug).first()
