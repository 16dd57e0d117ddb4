"""The limit store in the database: rows locked for each decision."""

from __future__ import annotations

from django.db import transaction

from config.db import update_fields_many
from integrations.limits.stores.base import (
    Admission,
    State,
    as_datetime,
    breaker_wait,
    rate_wait,
)
from integrations.models import CircuitBreaker, RateLimitWindow

__all__ = ("DatabaseStore",)


class DatabaseStore:
    """Rows locked with SELECT … FOR UPDATE (PostgreSQL); on SQLite every transaction already
    takes the write lock at BEGIN (IMMEDIATE mode), which serialises them the same way."""

    def _locked_windows(self, keys: list[str]) -> list[RateLimitWindow]:
        locked = RateLimitWindow.objects.select_for_update().filter(key__in=keys)
        rows = {window.key: window for window in locked.order_by("key")}
        return [rows[key] for key in keys] if len(rows) == len(set(keys)) else []

    def _windows(self, keys: list[str]) -> list[RateLimitWindow]:
        """Lock the rows of ``keys`` in key order (no deadlocks), creating missing ones."""
        windows = self._locked_windows(keys)
        if not windows:
            with transaction.atomic(savepoint=True):
                RateLimitWindow.objects.bulk_create(
                    [RateLimitWindow(key=key) for key in keys], ignore_conflicts=True
                )
            windows = self._locked_windows(keys)
        return windows

    def _breaker_row(self, breaker: tuple[str, str]) -> CircuitBreaker | None:
        provider, region = breaker
        return CircuitBreaker.objects.filter(provider_key=provider, region=region).first()

    def admit(
        self, quotas, *, customer, now, breaker, probe_lease, count=1, horizon=0.0
    ) -> Admission:
        # The breaker is read before the windows are locked: an open one answers without a
        # write transaction, and the lock (on SQLite, the database's) is held for less.
        breaker_row = self._breaker_row(breaker)
        held = breaker_wait(breaker_row, now)
        if held is not None:
            return Admission(held, cause="breaker")
        with transaction.atomic():
            windows = self._windows([q.key for q in quotas]) if quotas else []
            wait = rate_wait(windows, quotas, customer, now)
            if wait is not None:
                admission = Admission(wait, cause="rate")
            elif breaker_row is None or breaker_row.state == State.CLOSED:
                room = [q.rate - len(w.hits) for w, q in zip(windows, quotas, strict=True)]
                admission = Admission(
                    None,
                    clean=breaker_row is None or not breaker_row.failing_deliveries,
                    granted=min([count, *room]),
                )
            else:
                admission = self._probe(breaker_row, now=now, probe_lease=probe_lease)
            if admission.wait is None:
                stamp = now if admission.granted == 1 else now + horizon
                for window in windows:
                    window.hits += [stamp] * admission.granted
            update_fields_many(windows, ["hits", "next_slots"])
        return admission

    def recheck(self, quotas, *, breaker, now) -> Admission:
        breaker_row = self._breaker_row(breaker)
        if breaker_row is not None and breaker_row.state != State.CLOSED:
            return Admission(0.0, cause="breaker")
        cooldowns = RateLimitWindow.objects.filter(key__in=[q.key for q in quotas])
        until = max(cooldowns.values_list("cooldown_until", flat=True), default=0.0)
        if until > now:
            return Admission(until - now, cause="rate")
        return Admission(None, clean=breaker_row is None or not breaker_row.failing_deliveries)

    def cool_down(self, keys: list[str], *, until: float) -> None:
        with transaction.atomic():
            for window in self._windows(keys):
                if window.cooldown_until < until:
                    window.cooldown_until = until
                    window.save(update_fields=["cooldown_until"])

    def _probe(self, breaker: CircuitBreaker, *, now: float, probe_lease: float) -> Admission:
        """The breaker's cool-off (or its probe's lease) is over: a conditional update makes
        one of all callers arriving now the probe."""
        mine = CircuitBreaker.objects.filter(pk=breaker.pk, state=breaker.state)
        if breaker.state == State.OPEN:
            won = mine.filter(open_until=breaker.open_until)
        else:
            won = mine.filter(probe_until=breaker.probe_until)
        if won.update(state=State.HALF_OPEN, probe_until=as_datetime(now + probe_lease)):
            return Admission(None, probe=True, granted=1)
        return Admission(probe_lease, cause="breaker")

    def breaker_record(
        self,
        provider: str,
        region: str,
        *,
        ok: bool,
        delivery_id: int,
        threshold: int,
        cool_off: float,
        now: float,
        error: str = "",
    ) -> str | None:
        scope = CircuitBreaker.objects.filter(provider_key=provider, region=region)
        if ok:
            # The common case, a success on a healthy provider, reads and writes nothing else.
            dirty = scope.exclude(state=State.CLOSED, failing_deliveries=[])
            before = dirty.values_list("state", flat=True).first()
            if before is None:
                return None
            dirty.update(
                state=State.CLOSED,
                failing_deliveries=[],
                opened_at=None,
                first_opened_at=None,
                open_until=None,
                probe_until=None,
            )
            return State.CLOSED if before != State.CLOSED else None
        CircuitBreaker.objects.get_or_create(provider_key=provider, region=region)
        with transaction.atomic():
            breaker = scope.select_for_update().get()
            breaker.last_error = error
            changed = None
            if breaker.state == State.HALF_OPEN:
                changed = State.OPEN
            elif breaker.state == State.CLOSED:
                if delivery_id not in breaker.failing_deliveries:
                    breaker.failing_deliveries = [*breaker.failing_deliveries, delivery_id]
                if len(breaker.failing_deliveries) >= threshold:
                    changed = State.OPEN
            if changed:
                if breaker.state == State.CLOSED or breaker.first_opened_at is None:
                    breaker.first_opened_at = as_datetime(now)
                breaker.state = State.OPEN
                breaker.opened_at = as_datetime(now)
                breaker.open_until = as_datetime(now + cool_off)
                breaker.probe_until = None
            breaker.save()
        return changed

    def breaker_control(self, provider: str, region: str, *, action: str, now: float) -> str:
        scope = CircuitBreaker.objects.filter(provider_key=provider, region=region)
        with transaction.atomic():
            breaker = scope.select_for_update().first()
            if breaker is None:
                return State.CLOSED
            before = breaker.state
            if action == "close":
                breaker.state = State.CLOSED
                breaker.failing_deliveries = []
                breaker.opened_at = breaker.first_opened_at = None
                breaker.open_until = breaker.probe_until = None
            elif before != State.CLOSED:
                breaker.state = State.OPEN
                breaker.open_until = as_datetime(now)
                breaker.probe_until = None
            breaker.save()
        return before
