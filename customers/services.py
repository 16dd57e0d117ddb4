"""Writes for regions, customers and API keys."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from config.prepared import PreparedRead
from customers.models import ApiKey, ApiKeyAuditEntry, Customer, Region

__all__ = (
    "API_KEY_PREFIX",
    "ApiKeyScopeInvalid",
    "actor_label",
    "api_key_audit",
    "api_key_authenticate",
    "api_key_create",
    "api_key_issue",
    "api_key_revoke",
    "api_key_scope_check",
    "api_key_update",
    "customer_create",
    "customer_update",
    "region_create",
)

API_KEY_PREFIX = "sy_"
# Writing last_used_at on every request would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyScopeInvalid(ValueError):
    """An ``admin`` key limited to customers: admin work spans customers by nature."""


def actor_label(who) -> str:
    """'user:<name>' for an admin user, 'api-key:<name>' for an API key, 'system' for None."""
    if who is None:
        return "system"
    if hasattr(who, "get_username"):
        return f"user:{who.get_username()}"
    if hasattr(who, "prefix"):
        return f"api-key:{who.name}"
    return str(who)


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


def api_key_scope_check(*, scope: str, customers) -> None:
    if scope == ApiKey.Scope.ADMIN and customers:
        raise ApiKeyScopeInvalid(
            "An admin key cannot be limited to customers: admin work (regions, customers, "
            "shared credentials) spans every customer. Use an app key for a customer limit."
        )


def api_key_audit(*, api_key: ApiKey, action: str, actor, changes: dict | None = None) -> None:
    ApiKeyAuditEntry.objects.create(
        api_key=api_key, action=action, actor=actor_label(actor), changes=changes or {}
    )


def _audited_state(api_key: ApiKey) -> dict:
    return {
        "name": api_key.name,
        "scope": api_key.scope,
        "customers": sorted(c.slug for c in api_key.customers.all()),
        "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
    }


@transaction.atomic
def api_key_create(
    *,
    name: str,
    customers: list[Customer] = (),
    scope: str = ApiKey.Scope.APP,
    expires_at=None,
    actor=None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never retrievable again."""
    api_key_scope_check(scope=scope, customers=customers)
    api_key = ApiKey(
        name=name, scope=scope, expires_at=expires_at, customer_limited=bool(customers)
    )
    raw_key = api_key_issue(api_key=api_key)
    if customers:
        api_key.customers.set(customers)
    api_key_audit(
        api_key=api_key,
        action=ApiKeyAuditEntry.Action.CREATE,
        actor=actor,
        changes={k: [None, v] for k, v in _audited_state(api_key).items()},
    )
    return api_key, raw_key


@transaction.atomic
def api_key_update(*, api_key: ApiKey, actor=None, customers=None, **changes) -> ApiKey:
    """Change a key's name, scope, expiry or customers (None: unchanged); audited."""
    # From the row, not the instance: an admin form has already applied its changes to it.
    before = _audited_state(ApiKey.objects.get(pk=api_key.pk))
    wanted = list(customers) if customers is not None else list(api_key.customers.all())
    api_key_scope_check(scope=changes.get("scope", api_key.scope), customers=wanted)
    for name, value in changes.items():
        setattr(api_key, name, value)
    api_key.customer_limited = bool(wanted)
    api_key.full_clean()
    api_key.save()
    if customers is not None:
        api_key.customers.set(wanted)
    after = _audited_state(api_key)
    diff = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if diff:
        api_key_audit(
            api_key=api_key, action=ApiKeyAuditEntry.Action.CHANGE, actor=actor, changes=diff
        )
    return api_key


def api_key_revoke(*, api_key: ApiKey, actor=None) -> ApiKey:
    if api_key.revoked_at is None:
        with transaction.atomic():
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            api_key_audit(api_key=api_key, action=ApiKeyAuditEntry.Action.REVOKE, actor=actor)
    return api_key


# Every API request looks its key up: compiled once per process.
_API_KEY_BY_PREFIX = PreparedRead(lambda prefix: ApiKey.objects.filter(prefix=prefix).order_by())


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key``: looked up by prefix, compared in constant time."""
    parts = raw_key.split("_")
    if len(parts) < 3 or f"{parts[0]}_" != API_KEY_PREFIX:
        return None
    found = _API_KEY_BY_PREFIX.objects(prefix=parts[1])
    api_key = found[0] if found else None
    if api_key is None:
        # Spend the same hashing time as a hit, so timing does not reveal valid prefixes.
        hmac.compare_digest(_digest(raw_key), "0" * 64)
        return None
    if not hmac.compare_digest(_digest(raw_key), api_key.secret_hash) or api_key.is_revoked:
        return None
    now = timezone.now()
    if api_key.expires_at is not None and api_key.expires_at <= now:
        return None
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
