"""The outbox shared by deliveries and inbound events: rows that are their own queue entries,
claimed under a renewed lease, relayed to the django-q2 broker, recovered when a worker or a
broker message is lost, dead-lettered, and reopened for a retry or replay."""

from integrations.outbox.broker import (
    broker_waiting,
    enqueue_batches,
    enqueued_until,
    requeue_unclaimed,
    task_enqueue,
)
from integrations.outbox.lease import LeaseHeartbeat
from integrations.outbox.outbox import EXHAUSTED_REASON, Outbox, recovery_seconds
from integrations.outbox.relay import relay_due
from integrations.outbox.settle import transaction_spoilt, write_isolated

__all__ = (
    "EXHAUSTED_REASON",
    "LeaseHeartbeat",
    "Outbox",
    "broker_waiting",
    "enqueue_batches",
    "enqueued_until",
    "recovery_seconds",
    "relay_due",
    "requeue_unclaimed",
    "task_enqueue",
    "transaction_spoilt",
    "write_isolated",
)
