"""Manual control of deliveries (API and admin): cancel, retry a dead letter, retry many."""

from collections.abc import Iterable

from django.utils import timezone

from config.api.problems import ProblemConflict
from integrations.deliveries.models import Delivery
from integrations.deliveries.services.outbox import DELIVERIES
from integrations.deliveries.services.policy import retry_policy

__all__ = ("dead_letters_retry", "deliveries_cancel", "delivery_cancel", "delivery_retry")

Status = Delivery.Status


def delivery_retry(*, delivery: Delivery) -> Delivery:
    """Send a dead letter again now, with a fresh retry budget; the attempt is marked manual."""
    retried = dead_letters_retry(ids=[delivery.pk], enqueue=True)
    if not retried:
        raise ProblemConflict(
            f"Delivery {delivery.pk} is {delivery.get_status_display().lower()}; "
            "only dead letters can be retried."
        )
    delivery.refresh_from_db()
    return delivery


def delivery_cancel(*, delivery: Delivery) -> Delivery:
    if not deliveries_cancel(queryset=Delivery.objects.filter(pk=delivery.pk)):
        delivery.refresh_from_db()
        raise ProblemConflict(
            f"Delivery {delivery.pk} is {delivery.get_status_display().lower()}; only pending "
            "deliveries and dead letters can be cancelled."
        )
    delivery.refresh_from_db()
    return delivery


def deliveries_cancel(*, queryset) -> int:
    """Cancel the pending and dead deliveries among ``queryset``; in-flight ones finish first."""
    now = timezone.now()
    return queryset.filter(status__in=[Status.PENDING, Status.DEAD]).update(
        status=Status.CANCELLED, finished_at=now, enqueued_until=None, updated_at=now
    )


def dead_letters_retry(*, ids: Iterable[int] | None = None, queryset=None, enqueue=False) -> int:
    """Move dead letters back to pending (``Outbox.reopen``), each with a fresh retry budget.

    Give ``ids`` or a ``queryset`` of deliveries (only its dead ones are touched). Bulk retries
    are left to the dispatcher, which feeds the broker at a bounded rate; ``enqueue`` queues
    at once (single retries from the API or admin)."""
    if queryset is None:
        queryset = Delivery.objects.filter(pk__in=list(ids or []))
    return DELIVERIES.reopen(
        queryset,
        statuses=[Status.DEAD],
        budgets=_retry_budgets,
        enqueue=enqueue,
        manual_retry=True,
    )


def _retry_budgets(delivery_ids: list[int]) -> list[tuple[int, list[int]]]:
    """A retried dead letter gets its integration's retry policy's attempts again, not one lone
    shot: an operator retries after fixing the cause, and a transient blip should still back
    off. Split as (attempts, delivery ids)."""
    budgets: dict[int, list[int]] = {}
    rows = Delivery.objects.filter(pk__in=delivery_ids).select_related("integration")
    for delivery in rows.only("pk", "provider_key", "integration__config"):
        budget = retry_policy(delivery.provider_key, delivery.integration).max_attempts
        budgets.setdefault(budget, []).append(delivery.pk)
    return list(budgets.items())
