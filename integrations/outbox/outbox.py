"""The one outbox mechanism of every table whose rows are their own queue entries (deliveries,
inbound events). Each table describes itself once (an ``Outbox``); the states and their moves
are the same for all:

    waiting --claim--> claimed --settle--> finished, waiting again (a retry) or dead
    claimed --lease expired--> waiting, or dead when that was its last allowed attempt
    waiting, out of attempts --relay--> dead
    dead or finished --reopen--> waiting, with a fresh attempt budget

Every move is a conditional UPDATE on the row (status, lease token), so two workers or two
dispatchers racing on one row cannot both act on it."""

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Case, F, Q, TextField, Value, When
from django.db.models.functions import Concat
from django.utils import timezone

from config import tracing
from config.prepared import PreparedUpdate
from integrations.outbox.broker import enqueue_batches, enqueued_until
from integrations.outbox.lease import LeaseHeartbeat

__all__ = ("EXHAUSTED_REASON", "Outbox", "recovery_seconds")

logger = logging.getLogger(__name__)

# A worker may claim a row this early, so clocks a little apart do not delay it a tick.
CLAIM_TOLERANCE = timedelta(seconds=1)
# Rows moved per statement by bulk operations, so that any number fits in bounded memory.
BULK_CHUNK = 1000
EXHAUSTED_REASON = (
    "Gave up: its attempt limit was reached and its last attempt never settled (the worker was "
    "lost or its write failed; the lease expired)."
)


@dataclass(frozen=True)
class Outbox:
    """How one table plays the outbox: its statuses and the fields a move writes.

    ``waiting``: statuses a worker may claim; rows given back take the first. ``claimed``: the
    status while a worker holds the lease. ``fair_by``: a foreign key the relay takes turns over
    (each value's rows queued or claimed capped at SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT)."""

    model: type
    task_path: str
    waiting: tuple[str, ...]
    claimed: str
    dead: str
    error_field: str
    finished_field: str
    batch_setting: str = ""
    batch_size: int = 0
    dead_reason_field: str = ""
    dead_reasons: dict = field(default_factory=dict)  # "worker_lost", "exhausted" → value
    lost_error: str = "Worker lost during the attempt (lease expired)."
    updated_field: str = ""
    fair_by: str = ""

    @property
    def name(self) -> str:
        return self.model._meta.model_name

    def batch(self) -> int:
        """Ids per broker task (read at call time: settings may change under tests)."""
        return getattr(settings, self.batch_setting) if self.batch_setting else self.batch_size

    def waiting_rows(self):
        return self.model.objects.filter(status__in=self.waiting)

    def enqueue(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return  # an empty relay pass: no task, and no span
        # The relay's span: under the API request for a delivery queued at once, else the
        # dispatcher's own.
        with tracing.relay_span(self.name, len(ids)):
            enqueue_batches(
                model=self.model,
                task_path=self.task_path,
                ids=ids,
                batch_size=self.batch_for(len(ids)),
            )

    def batch_for(self, count: int) -> int:
        """Ids per task when queueing ``count`` rows: the table's batch, or fewer so that a
        few rows are spread over the cluster's workers rather than sent one after another by
        one of them while the others idle."""
        workers = max(1, settings.Q_CLUSTER["workers"])
        return max(1, min(self.batch(), -(-count // workers)))

    def _stamp(self, now) -> dict:
        return {self.updated_field: now} if self.updated_field else {}

    def _dead(self, reason_key: str, now) -> dict:
        values = {"status": self.dead, self.finished_field: now, **self._stamp(now)}
        if self.dead_reason_field:
            values[self.dead_reason_field] = self.dead_reasons[reason_key]
        return values

    def _explained(self, reason: str):
        """The error column set to ``reason``, followed by the last error it held, if any."""
        return Case(
            When(**{self.error_field: ""}, then=Value(reason)),
            default=Concat(Value(f"{reason} Last error: "), F(self.error_field)),
            output_field=TextField(),
        )

    # --- worker side --------------------------------------------------------------------------

    def claim(self, ids: list[int]) -> uuid.UUID:
        """Take one lease on the rows among ``ids`` that are waiting, due and within their
        attempt limit, counting the attempt; committed at once, so it counts even if the worker
        dies. Rows someone else holds are left alone (a duplicate task claims nothing). The
        lease is short and renewed by ``heartbeat`` while the batch runs."""
        token = uuid.uuid4()
        if not ids:
            return token
        now = timezone.now()
        self._claim_update.run(
            ids=list(ids),
            due_by=now + CLAIM_TOLERANCE,
            token=token,
            lease_until=now + timedelta(seconds=settings.SWITCHYARD_LEASE_SECONDS),
        )
        return token

    @cached_property
    def _claim_update(self) -> PreparedUpdate:
        """The claim's UPDATE, compiled once per batch size: a worker claims on every task.

        The conditions ride in a CASE, which no index serves, so the rows are found by primary
        key whatever the statistics say: with a backlog newer than the table's last ANALYZE,
        PostgreSQL may otherwise serve them from the due index and read every waiting row."""

        def build(ids, due_by, token, lease_until):
            claimable = Q(
                status__in=self.waiting,
                next_attempt_at__lte=due_by,
                attempts__lt=F("attempt_limit"),
            )
            changes = {
                "status": self.claimed,
                "lease_token": token,
                "lease_until": lease_until,
                "attempts": F("attempts") + 1,
                "enqueued_until": None,
            }
            return self.model.objects.filter(_unindexed(claimable), pk__in=ids), changes

        return PreparedUpdate(build)

    def held(self, ids: Iterable[int], token):
        """The rows among ``ids`` still held under ``token``."""
        return self.model.objects.filter(pk__in=list(ids), lease_token=token)

    def heartbeat(self, ids: Iterable[int], token) -> LeaseHeartbeat:
        return LeaseHeartbeat(
            model=self.model, ids=list(ids), token=token, held=Q(status=self.claimed)
        )

    def release(self, ids: Iterable[int], tokens: Iterable, **changes) -> int:
        """Give claimed rows back as waiting, un-counting the attempt they never made."""
        return self.model.objects.filter(pk__in=list(ids), lease_token__in=set(tokens)).update(
            status=self.waiting[0],
            attempts=F("attempts") - 1,
            lease_token=None,
            lease_until=None,
            **changes,
        )

    # --- dispatcher side ----------------------------------------------------------------------

    def recover_expired(self) -> int:
        """Rows whose worker died mid-attempt (lease expired: its heartbeat stopped) become due
        again, or dead when that was their last allowed attempt. An indexed EXISTS, and the
        UPDATEs only when a lease expired. Its index range also holds every claimed row settled
        since the table was last vacuumed, so the dispatcher runs it every ``recovery_seconds()``
        rather than every pass."""
        now = timezone.now()
        expired = self.model.objects.filter(status=self.claimed, lease_until__lt=now)
        if not expired.exists():
            return 0
        dead = expired.filter(attempts__gte=F("attempt_limit")).update(
            **self._dead("worker_lost", now),
            **{self.error_field: self._explained(self.lost_error)},
            lease_token=None,
            lease_until=None,
        )
        retried = expired.update(
            status=self.waiting[0],
            next_attempt_at=now,
            enqueued_until=None,
            lease_token=None,
            lease_until=None,
            **{self.error_field: self.lost_error},
            **self._stamp(now),
        )
        if dead or retried:
            logger.warning(
                "outbox.leases_recovered model=%s retried=%s dead=%s", self.name, retried, dead
            )
        return dead + retried

    def dead_letter_exhausted(self, ids: list[int]) -> int:
        """Waiting rows out of attempts (which no claim takes) become dead letters, with the
        reason and their last error. The relay calls it for those it finds among the due."""
        now = timezone.now()
        dead = (
            self.waiting_rows()
            .filter(pk__in=ids, attempts__gte=F("attempt_limit"))
            .update(
                **self._dead("exhausted", now),
                **{self.error_field: self._explained(EXHAUSTED_REASON)},
                lease_token=None,
                lease_until=None,
                enqueued_until=None,
            )
        )
        logger.warning("outbox.dead_lettered model=%s ids=%s reason=attempt_limit", self.name, ids)
        return dead

    # --- operators ----------------------------------------------------------------------------

    def reopen(
        self,
        queryset,
        *,
        statuses: Iterable[str],
        budgets: Callable[[list[int]], Iterable[tuple[int, list[int]]]],
        enqueue: bool = False,
        **changes,
    ) -> int:
        """Move the rows of ``queryset`` in ``statuses`` back to waiting, due now, in chunks.
        ``budgets(ids)`` splits a chunk into (attempts allowed from now, ids). ``enqueue`` queues
        them on commit (a single retry); bulk moves are left to the relay, which feeds the broker
        at a bounded rate. Returns how many moved."""
        statuses = list(statuses)
        rows = queryset.filter(status__in=statuses).order_by("pk")
        total, last_id = 0, 0
        while chunk := list(rows.filter(pk__gt=last_id).values_list("pk", flat=True)[:BULK_CHUNK]):
            last_id = chunk[-1]
            now = timezone.now()
            values = {
                "status": self.waiting[0],
                "next_attempt_at": now,
                "enqueued_until": enqueued_until() if enqueue else None,
                self.finished_field: None,
                **({self.dead_reason_field: ""} if self.dead_reason_field else {}),
                **self._stamp(now),
                **changes,
            }
            with transaction.atomic():
                for budget, ids in budgets(chunk):
                    rows = self.model.objects.filter(_unindexed(Q(status__in=statuses)), pk__in=ids)
                    total += rows.update(attempt_limit=F("attempts") + budget, **values)
                if enqueue:
                    transaction.on_commit(lambda chunk=chunk: self.enqueue(chunk))
            logger.info("outbox.reopened model=%s count=%s", self.name, len(chunk))
        return total


def _unindexed(condition: Q) -> Case:
    """``condition`` as a filter the planner cannot serve from an index: for statements whose
    rows are named by primary key, so that no estimate leads it to a range of the backlog."""
    return Case(
        When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
    )


def recovery_seconds() -> float:
    """How often the dispatcher recovers expired leases: a tenth of a lease (1 s by default), so
    a dead worker's rows are due again at most a lease and a tenth after its last renewal."""
    return settings.SWITCHYARD_LEASE_SECONDS / 10
