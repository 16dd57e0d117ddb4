"""The outbox's side of the django-q2 broker: queueing rows in batches, and queueing them again
from their claim state when their broker message is gone."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from config.prepared import PreparedRead

__all__ = (
    "broker_waiting",
    "enqueue_batches",
    "enqueued_until",
    "requeue_unclaimed",
    "shared_broker",
    "task_enqueue",
)

logger = logging.getLogger(__name__)


def enqueued_until() -> datetime:
    """Until when a freshly queued task counts as in the broker at the most (then the relay
    queues it again whatever the broker says). ``requeue_unclaimed`` derives the time it was
    queued from it: this minus SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS."""
    return timezone.now() + timedelta(seconds=settings.SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS)


_broker = None


def shared_broker():
    """This process's django-q2 broker client, made on first use. Without one, ``async_task``
    makes a client per task: for Redis a connection pool of its own, so a new TCP connection
    (connect, handshake, close) for every task queued, on the API's accept path too."""
    global _broker
    if _broker is None:
        _broker = get_broker()
    return _broker


def _broker_failed() -> None:
    """Drop the shared client after a failure: the next use makes a fresh one."""
    global _broker
    _broker = None


def task_enqueue(task_path: str, *args, task_name: str) -> None:
    """Queue one django-q2 task through this process's ``shared_broker()``. A failure drops the
    client (the next task makes a fresh one) and is raised: the caller knows what to undo."""
    try:
        async_task(task_path, *args, q_options={"task_name": task_name, "broker": shared_broker()})
    except Exception:
        _broker_failed()
        raise


def enqueue_batches(*, model, task_path: str, ids: list[int], batch_size: int) -> None:
    """One task per ``batch_size`` ids. If the broker is down, the rows' markers are cleared so
    the dispatcher's next pass queues them: the broker can fail, the rows cannot be lost."""
    name = model._meta.model_name
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        try:
            task_enqueue(task_path, batch, task_name=f"{name}-{batch[0]}+{len(batch)}")
        except Exception as exc:
            logger.warning(
                "outbox.enqueue_failed model=%s first=%s count=%s error=%s",
                name,
                batch[0],
                len(batch),
                exc.__class__.__name__,
            )
            model.objects.filter(pk__in=batch).update(enqueued_until=None)


# --- lost broker messages -------------------------------------------------------------------


def broker_waiting() -> int | None:
    """Tasks waiting in the django-q2 broker, not yet taken by a cluster (the ORM and Redis
    brokers both count them: ``queue_size``), or None when the broker cannot tell (down, or a
    broker without a count). Tasks a cluster has taken (prefetched into its local queue, up to
    ``queue_limit``, or running) are not counted. Asks this process's ``shared_broker()``."""
    try:
        size = shared_broker().queue_size()
    except Exception as exc:
        _broker_failed()
        logger.warning("outbox.broker_size_failed error=%s", exc.__class__.__name__)
        return None
    return None if size is None else int(size)


# requeue_unclaimed's first check, by outbox.
_ANY_STALE: dict[str, PreparedRead] = {}


def _marked(queued, now):
    """Rows marked queued: their broker message may still be on its way."""
    return queued.filter(enqueued_until__gt=now)


def _stale(queued, now, queued_before):
    """Marked rows queued before ``queued_before``: their marker was set to (queue time +
    SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS)."""
    return _marked(queued, now).filter(enqueued_until__lt=queued_before)


def requeue_unclaimed(outbox) -> int:
    """Clear the queue marker of rows whose broker message is gone, so that the relay queues
    them again on this pass; returns how many. The dispatcher's relay calls it every pass.

    ``outbox.waiting_rows()`` wait for a worker (e.g. pending deliveries); among them, those
    marked queued (``enqueued_until`` in the future) are counted against the broker. The
    broker hands tasks out first in, first out (Redis's list does; the ORM broker's unordered
    scan near enough), and its ``broker_waiting()`` tasks carry at most
    ``outbox.batch()`` ids each, so at most the newest ``waiting * batch_size`` marked rows still
    have a message in it; the older ones were taken by a cluster or lost (a flushed broker, a
    killed cluster's prefetched tasks). Of these, the rows queued more than
    SWITCHYARD_ENQUEUE_GRACE_SECONDS ago are queued again. A cluster's prefetched task may
    still run later: its claim then finds nothing (the conditional claim), so the copy costs a
    query, never a second send. Other tasks in the broker (other models, probes) only make
    this count more cautious; SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS stays the upper bound.

    Costs one indexed EXISTS per pass (compiled once) while no row is older than the grace
    period; the broker is asked, and the marked rows counted, only when one is."""
    now = timezone.now()
    timeout = timedelta(seconds=settings.SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS)
    queued_before = now - timedelta(seconds=settings.SWITCHYARD_ENQUEUE_GRACE_SECONDS) + timeout
    any_stale = _ANY_STALE.get(outbox.name)
    if any_stale is None:
        any_stale = _ANY_STALE[outbox.name] = PreparedRead(
            lambda now, queued_before: (
                _stale(outbox.waiting_rows(), now, queued_before).order_by().values_list("pk")[:1]
            )
        )
    if not any_stale.rows(now=now, queued_before=queued_before):
        return 0
    queued = outbox.waiting_rows()
    waiting = broker_waiting()
    if waiting is None:
        return 0
    uncovered = _marked(queued, now).count() - waiting * outbox.batch()
    if uncovered <= 0:
        return 0
    stale = _stale(queued, now, queued_before)
    ids = list(stale.order_by("enqueued_until").values_list("pk", flat=True)[:uncovered])
    # Conditional: a row claimed or queued again meanwhile no longer matches.
    cleared = stale.filter(pk__in=ids).update(enqueued_until=None)
    if cleared:
        logger.info(
            "outbox.requeued_unclaimed model=%s count=%s broker_waiting=%s",
            outbox.name,
            cleared,
            waiting,
        )
    return cleared
