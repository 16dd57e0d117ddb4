"""Queueing outbox rows (deliveries, inbound events) on the django-q2 broker, in batches."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

__all__ = ("enqueue_batches", "enqueued_until")

logger = logging.getLogger(__name__)


def enqueued_until() -> datetime:
    """Until when a freshly queued task counts as in the broker (then the relay queues it again)."""
    return timezone.now() + timedelta(seconds=settings.SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS)


def enqueue_batches(*, model, task_path: str, ids: list[int], batch_size: int) -> None:
    """One task per ``batch_size`` ids. If the broker is down, the rows' markers are cleared so
    the dispatcher's next pass queues them: the broker can fail, the rows cannot be lost."""
    name = model._meta.model_name
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        try:
            async_task(task_path, batch, q_options={"task_name": f"{name}-{batch[0]}+{len(batch)}"})
        except Exception as exc:
            logger.warning(
                "outbox.enqueue_failed model=%s first=%s count=%s error=%s",
                name,
                batch[0],
                len(batch),
                exc.__class__.__name__,
            )
            model.objects.filter(pk__in=batch).update(enqueued_until=None)
