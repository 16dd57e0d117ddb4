"""Deliveries as an outbox (integrations/outbox): claim, lease, relay, recovery, dead letters and
retries are that one mechanism's, shared with inbound events."""

from integrations.deliveries.models import Delivery
from integrations.outbox import Outbox

__all__ = ("DELIVERIES",)

DELIVERIES = Outbox(
    model=Delivery,
    task_path="integrations.deliveries.tasks.delivery_send_batch",
    batch_setting="SWITCHYARD_SEND_BATCH",
    waiting=(Delivery.Status.PENDING,),
    claimed=Delivery.Status.IN_FLIGHT,
    dead=Delivery.Status.DEAD,
    error_field="last_error",
    finished_field="finished_at",
    dead_reason_field="dead_reason",
    dead_reasons={
        "worker_lost": Delivery.DeadReason.WORKER_LOST,
        "exhausted": Delivery.DeadReason.ATTEMPTS_EXHAUSTED,
    },
    lost_error="Worker lost during the attempt (lease expired); the provider may have received it.",
    updated_field="updated_at",
    fair_by="customer",
)
