"""Writes for regions, customers and API keys."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from customers.models import ApiKey, Customer, Region

__all__ = (
    "API_KEY_PREFIX",
    "api_key_authenticate",
    "api_key_create",
    "api_key_issue",
    "api_key_revoke",
    "customer_create",
    "customer_update",
    "region_create",
)

API_KEY_PREFIX = "sy_"
# Writing last_used_at on every request would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def region_create(*, code: str, name: str) -> Region:
    region = Region(code=code, name=name)
    region.full_clean()
    region.save()
    return region


def customer_create(
    *, slug: str, name: str, region: Region, tier: str = "standard", active: bool = True
) -> Customer:
    customer = Customer(slug=slug, name=name, region=region, tier=tier, active=active)
    customer.full_clean()
    customer.save()
    return customer


def customer_update(*, customer: Customer, **changes) -> Customer:
    for field, value in changes.items():
        setattr(customer, field, value)
    customer.full_clean()
    customer.save(update_fields=[*changes, "updated_at"])
    return customer


def api_key_issue(*, api_key: ApiKey) -> str:
    """Give an unsaved key its prefix and secret, save it, and return the raw key (shown once)."""
    api_key.prefix = secrets.token_hex(4)
    raw_key = f"{API_KEY_PREFIX}{api_key.prefix}_{secrets.token_urlsafe(32)}"
    api_key.secret_hash = _digest(raw_key)
    api_key.full_clean()
    api_key.save()
    return raw_key


@transaction.atomic
def api_key_create(*, name: str, customers: list[Customer] = ()) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never retrievable again."""
    api_key = ApiKey(name=name)
    raw_key = api_key_issue(api_key=api_key)
    if customers:
        api_key.customers.set(customers)
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key``: looked up by prefix, compared in constant time."""
    parts = raw_key.split("_")
    if len(parts) < 3 or f"{parts[0]}_" != API_KEY_PREFIX:
        return None
    api_key = ApiKey.objects.filter(prefix=parts[1]).first()
    if api_key is None:
        # Spend the same hashing time as a hit, so timing does not reveal valid prefixes.
        hmac.compare_digest(_digest(raw_key), "0" * 64)
        return None
    if not hmac.compare_digest(_digest(raw_key), api_key.secret_hash) or api_key.is_revoked:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
