"""The inbound outbox (``INBOUND``, integrations/outbox, the mechanism deliveries use too): the
dispatcher's relay queues due events in batches on every pass, recovers the events of dead
workers, and a replay reopens finished ones."""

from integrations.deliveries.retry import RetryPolicy
from integrations.outbox import Outbox, relay_due
from webhooks.models import InboundEvent

__all__ = (
    "INBOUND",
    "PROCESS_BATCH",
    "inbound_events_recover_leases",
    "inbound_events_relay_due",
    "inbound_events_replay",
)

# Events per task: one broker message, one task result and one claim, lock and settle for many
# events (the ORM broker's pusher and monitor cost about 12 ms per task); a relay pass takes at
# most SWITCHYARD_RELAY_BATCH (200) ids per query, so a larger batch would not form.
PROCESS_BATCH = 200
Status = InboundEvent.Status
PENDING = (Status.RECEIVED, Status.FAILED)
# Not finished: waiting for a worker or held by one (a replay leaves these alone).
LIVE = (*PENDING, Status.PROCESSING)

INBOUND = Outbox(
    model=InboundEvent,
    task_path="webhooks.tasks.inbound_events_process",
    batch_size=PROCESS_BATCH,
    waiting=PENDING,
    claimed=Status.PROCESSING,
    dead=Status.DEAD,
    error_field="error",
    finished_field="processed_at",
    lost_error="Worker lost while processing (lease expired).",
)


def inbound_events_relay_due() -> int:
    """Dispatcher step, every pass: queue due events (just received, retries, lost messages) in
    tasks of PROCESS_BATCH ids (``relay_due``), so accepted events reach a worker within one
    dispatch interval; events out of attempts are dead-lettered instead."""
    return relay_due(INBOUND)


def inbound_events_recover_leases() -> int:
    """Dispatcher step, every pass: events whose worker died mid-batch become due again, or
    dead at their attempt limit (``Outbox.recover_expired``)."""
    return INBOUND.recover_expired()


def inbound_events_replay(*, queryset, enqueue: bool = True) -> int:
    """Process finished events again (dead letters after a fix, or processed ones to re-send),
    with a fresh retry budget (``Outbox.reopen``)."""
    finished = [status for status in Status.values if status not in LIVE]
    return INBOUND.reopen(
        queryset,
        statuses=finished,
        budgets=lambda ids: [(RetryPolicy().max_attempts, ids)],
        enqueue=enqueue,
        error="",
    )
