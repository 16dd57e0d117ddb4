"""Writes of the delivery engine, by stage: accept (``accept``), attempt and settle in a worker
(``attempt``, ``settle``), manual control (``control``) and the dispatcher's upkeep (``upkeep``).
Deliveries are an outbox (``outbox``), shared as a mechanism with inbound events."""

from integrations.deliveries.services.accept import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    BatchInvalid,
    BatchItemResult,
    IdempotencyKeyReused,
    deliveries_create_batch,
    delivery_create,
)
from integrations.deliveries.services.attempt import deliveries_attempt
from integrations.deliveries.services.control import (
    dead_letters_retry,
    deliveries_cancel,
    delivery_cancel,
    delivery_retry,
)
from integrations.deliveries.services.upkeep import (
    deliveries_recover_leases,
    deliveries_relay_due,
    idempotency_keys_purge,
)

__all__ = (
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "BatchInvalid",
    "BatchItemResult",
    "IdempotencyKeyReused",
    "dead_letters_retry",
    "deliveries_attempt",
    "deliveries_cancel",
    "deliveries_create_batch",
    "deliveries_recover_leases",
    "deliveries_relay_due",
    "delivery_cancel",
    "delivery_create",
    "delivery_retry",
    "idempotency_keys_purge",
)
