"""Erasure of a customer: what it sent, received and stored is removed, and what audit needs
stays (ids, timestamps, statuses, action names).

Each app adds an eraser for its own tables from its ``AppConfig.ready()``; ``customer_erase``
deactivates the customer (no new work is accepted for it), runs the erasers highest layer
first (they stop the work that uses what the lower layers hold), then revokes the customer's
API keys. Erasers work in batches and touch only rows that still hold data, so erasure can be
run again: after an interruption it finishes the job, and a second run changes nothing. Rows a
worker holds at the moment (in flight) are left and reported; running again erases them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils import timezone

from customers.models import ApiKey, Customer
from customers.services import actor_label, api_key_revoke, api_key_update

__all__ = ("CustomerNotFound", "Erased", "ErasureReport", "customer_erase", "eraser_add")

logger = logging.getLogger(__name__)


class CustomerNotFound(LookupError):
    """No customer has that slug."""


@dataclass
class Erased:
    """What one eraser did: rows changed (or deleted) per table, and rows left because a
    worker holds them (in flight), per table."""

    counts: dict[str, int] = field(default_factory=dict)
    busy: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, count: int) -> None:
        if count:
            self.counts[table] = self.counts.get(table, 0) + count

    def merge(self, other: Erased) -> None:
        for table, count in other.counts.items():
            self.add(table, count)
        for table, count in other.busy.items():
            if count:
                self.busy[table] = self.busy.get(table, 0) + count


@dataclass
class ErasureReport(Erased):
    customer: str = ""


# (name, eraser(*, customer, actor) -> Erased), in the order the apps were readied.
_erasers: list[tuple[str, Callable[..., Erased]]] = []


def eraser_add(name: str, eraser: Callable[..., Erased]) -> None:
    """Called from ``AppConfig.ready()`` by the app that owns the tables erased."""
    if any(existing == name for existing, _ in _erasers):
        raise RuntimeError(f"Eraser '{name}' is added twice")
    _erasers.append((name, eraser))


def customer_erase(*, slug: str, actor=None) -> ErasureReport:
    """Erase the data of the customer ``slug`` (``CustomerNotFound`` if there is none). The
    customer row stays, inactive, so the audit trail keeps pointing at it."""
    customer = Customer.objects.filter(slug=slug).first()
    if customer is None:
        raise CustomerNotFound(f"No customer with slug '{slug}'.")
    report = ErasureReport(customer=slug)
    report.add(
        Customer._meta.db_table,
        Customer.objects.filter(pk=customer.pk, active=True).update(
            active=False, updated_at=timezone.now()
        ),
    )
    for _, eraser in reversed(_erasers):
        report.merge(eraser(customer=customer, actor=actor))
    report.merge(_api_keys_erase(customer, actor))
    logger.info(
        "customers.erased customer=%s actor=%s rows=%s busy=%s",
        slug,
        actor_label(actor),
        sum(report.counts.values()),
        sum(report.busy.values()),
    )
    return report


def _api_keys_erase(customer: Customer, actor) -> Erased:
    """A key limited to this customer alone is revoked; a key shared with other customers
    loses this one (revoking it would cut the others off). Both are audited on the key."""
    erased = Erased()
    keys = ApiKey.objects.filter(customers=customer).prefetch_related("customers")
    for key in keys:
        others = [c for c in key.customers.all() if c.pk != customer.pk]
        if others:
            api_key_update(api_key=key, actor=actor, customers=others)
            erased.add(ApiKey._meta.db_table, 1)
        elif key.revoked_at is None:
            api_key_revoke(api_key=key, actor=actor)
            erased.add(ApiKey._meta.db_table, 1)
    return erased
