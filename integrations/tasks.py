"""django-q2 entry points. Each takes ids or nothing and calls one service."""

from integrations.heartbeats import heartbeat_record

__all__ = ("delivery_send", "delivery_send_batch", "worker_heartbeat")


def delivery_send(delivery_id: int) -> str | None:
    """One delivery; tasks queued before batches existed still name this."""
    from integrations.deliveries.services import delivery_attempt

    return delivery_attempt(delivery_id=delivery_id)


def delivery_send_batch(delivery_ids: list[int]) -> dict[int, str | None]:
    from integrations.deliveries.services import deliveries_attempt

    return deliveries_attempt(delivery_ids=delivery_ids)


def worker_heartbeat() -> None:
    """Queued by the dispatcher; running it proves a worker consumes the broker."""
    heartbeat_record(role="worker")
