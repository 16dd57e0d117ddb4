"""Keeping a claimed batch's lease alive while its worker runs it."""

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

__all__ = ("LeaseHeartbeat",)

logger = logging.getLogger(__name__)


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
