"""Outbox mechanics shared by deliveries and inbound events: queueing rows on the django-q2
broker in batches, keeping a claimed batch's lease alive while its worker runs it (a heartbeat),
and queueing rows again from their claim state when their broker message is gone."""

import logging
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

__all__ = (
    "LeaseHeartbeat",
    "broker_waiting",
    "enqueue_batches",
    "enqueued_until",
    "requeue_unclaimed",
)

logger = logging.getLogger(__name__)


def enqueued_until() -> datetime:
    """Until when a freshly queued task counts as in the broker at the most (then the relay
    queues it again whatever the broker says). ``requeue_unclaimed`` derives the time it was
    queued from it: this minus SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS."""
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


# --- lost broker messages -------------------------------------------------------------------

_broker = None


def broker_waiting() -> int | None:
    """Tasks waiting in the django-q2 broker, not yet taken by a cluster (the ORM and Redis
    brokers both count them: ``queue_size``), or None when the broker cannot tell (down, or a
    broker without a count). Tasks a cluster has taken (prefetched into its local queue, up to
    ``queue_limit``, or running) are not counted. One broker object per process."""
    global _broker
    try:
        if _broker is None:
            _broker = get_broker()
        size = _broker.queue_size()
    except Exception as exc:
        _broker = None
        logger.warning("outbox.broker_size_failed error=%s", exc.__class__.__name__)
        return None
    return None if size is None else int(size)


def requeue_unclaimed(*, queued, batch_size: int) -> int:
    """Clear the queue marker of rows whose broker message is gone, so that the relay queues
    them again on this pass; returns how many. The dispatcher's relay calls it every pass.

    ``queued``: the model's rows waiting for a worker (e.g. pending deliveries); among them,
    those marked queued (``enqueued_until`` in the future) are counted against the broker. The
    broker hands tasks out first in, first out (Redis's list does; the ORM broker's unordered
    scan near enough), and its ``broker_waiting()`` tasks carry at most
    ``batch_size`` ids each, so at most the newest ``waiting * batch_size`` marked rows still
    have a message in it; the older ones were taken by a cluster or lost (a flushed broker, a
    killed cluster's prefetched tasks). Of these, the rows queued more than
    SWITCHYARD_ENQUEUE_GRACE_SECONDS ago are queued again. A cluster's prefetched task may
    still run later: its claim then finds nothing (the conditional claim), so the copy costs a
    query, never a second send. Other tasks in the broker (other models, probes) only make
    this count more cautious; SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS stays the upper bound.

    Costs one indexed EXISTS per pass while no row is older than the grace period; the broker
    is asked, and the marked rows counted, only when one is."""
    now = timezone.now()
    timeout = timedelta(seconds=settings.SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS)
    grace = timedelta(seconds=settings.SWITCHYARD_ENQUEUE_GRACE_SECONDS)
    marked = queued.filter(enqueued_until__gt=now)
    # Queued before now - grace: its marker was set to (queue time + timeout).
    stale = marked.filter(enqueued_until__lt=now - grace + timeout)
    if not stale.exists():
        return 0
    waiting = broker_waiting()
    if waiting is None:
        return 0
    uncovered = marked.count() - waiting * batch_size
    if uncovered <= 0:
        return 0
    ids = list(stale.order_by("enqueued_until").values_list("pk", flat=True)[:uncovered])
    # Conditional: a row claimed or queued again meanwhile no longer matches.
    cleared = stale.filter(pk__in=ids).update(enqueued_until=None)
    if cleared:
        logger.info(
            "outbox.requeued_unclaimed model=%s count=%s broker_waiting=%s",
            queued.model._meta.model_name,
            cleared,
            waiting,
        )
    return cleared


# --- lease heartbeat ------------------------------------------------------------------------


class LeaseHeartbeat:
    """Keeps a claimed batch's lease alive while its worker runs it, so that the lease itself
    can be short (SWITCHYARD_LEASE_SECONDS): once renewals stop (the worker died) it expires
    within a lease, and the dispatcher's lease recovery gives the rows back.

    A daemon thread with its own database connection (closed when it stops) sets
    ``lease_until`` to now + the lease on the rows among ``ids`` still held under ``token``
    (and matching ``held``, e.g. ``Q(status="in_flight")``), every lease/3 seconds: one UPDATE
    per tick for the whole batch, in a short transaction of its own. Rows another transaction
    has locked (the batch's own settle) are skipped for that tick, not waited for (SKIP LOCKED on
    PostgreSQL), so the two never wait on each other. On SQLite, writers queue on the database
    lock (IMMEDIATE transactions, busy timeout): a tick waits for the settle to commit, the
    settle never waits for the tick, and the thread is only stopped outside a transaction.

    Use it as a context manager around the whole batch, so it stops however the batch ends. It
    does not start inside a transaction (the claim would not be visible to its connection; tasks
    run in autocommit, tests inside one). ``holding()`` tells the batch whether to start another
    attempt: False once renewals have failed for two ticks, as the lease may then run out."""

    def __init__(self, *, model, ids, token, held: Q | None = None, lease_seconds=None):
        self.model, self.ids, self.token = model, list(ids), token
        self.held = held if held is not None else Q()
        self.lease = float(lease_seconds or settings.SWITCHYARD_LEASE_SECONDS)
        self.interval = self.lease / 3
        self.renewals = 0
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LeaseHeartbeat":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        if not self.ids or transaction.get_connection().in_atomic_block:
            return
        self._renewed = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-heartbeat-{self.model._meta.model_name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing: no tick starts after this returns. Waits a moment for a tick under way
        (bounded: one blocked on another process's lock finishes alone, and finds the rows
        settled)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.interval, 1.0))

    def holding(self) -> bool:
        if self._thread is None:
            return True  # not renewing (inside a transaction): the claim alone counts
        return time.monotonic() - self._renewed < 2 * self.interval

    def renew(self) -> int:
        """One tick: extend the lease of the rows still held; returns how many."""
        now = timezone.now()
        mine = self.model.objects.filter(self.held, pk__in=self.ids, lease_token=self.token)
        with transaction.atomic():
            renewed = self.model.objects.filter(
                pk__in=mine.select_for_update(skip_locked=True).order_by().values("pk")
            ).update(lease_until=now + timedelta(seconds=self.lease))
        self.renewals += 1
        return renewed

    def _run(self) -> None:
        name = self.model._meta.model_name
        try:
            while not self._stop.wait(self.interval):
                started = time.monotonic()
                try:
                    self.renew()
                except Exception as exc:
                    logger.warning(
                        "outbox.lease_renewal_failed model=%s error=%s",
                        name,
                        exc.__class__.__name__,
                    )
                    connections.close_all()  # reconnect on the next tick
                else:
                    self._renewed = started
        finally:
            connections.close_all()
