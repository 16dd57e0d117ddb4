"""Writing a batch's outcomes so that one item the database refuses never costs the others."""

import logging
from collections.abc import Callable, Sequence

from django.db import transaction

__all__ = ("transaction_spoilt", "write_isolated")

logger = logging.getLogger(__name__)


def transaction_spoilt() -> bool:
    """After a failure: True if the batch's transaction can no longer be used (a savepoint could
    not be rolled back); the batch is then given up as a whole (its leases expire) rather than
    committed without its writes."""
    return transaction.get_connection().needs_rollback


def write_isolated(
    items: Sequence,
    write: Callable[[Sequence], None],
    refused: Callable[[object, Exception], None],
    *,
    name: str,
) -> list:
    """``write(items)`` under one savepoint: one statement per kind of write for the whole
    group. Should the database refuse it (a value it cannot store), each item is written alone
    under a savepoint of its own; an item refused alone is handed to ``refused(item, exc)``,
    which makes its outcome storable (a failure, a dropped value), and written once more. One
    refused again is left claimed: its lease expires and lease recovery takes it. Returns the
    items written; raises if the enclosing transaction itself is spoilt."""
    if not items:
        return []
    try:
        with transaction.atomic():
            write(items)
        return list(items)
    except Exception:
        if transaction_spoilt():
            raise
        logger.warning("outbox.settle_refused model=%s items=%s: one by one", name, len(items))
    return [item for item in items if _write_alone(item, write, refused, name)]


def _write_alone(item, write, refused, name: str) -> bool:
    try:
        with transaction.atomic():
            write([item])
        return True
    except Exception as exc:
        if transaction_spoilt():
            raise
        refused(item, exc)
    try:
        with transaction.atomic():
            write([item])
        return True
    except Exception:
        if transaction_spoilt():
            raise
        logger.exception("outbox.settle_failed model=%s item=%s", name, item)
        return False
