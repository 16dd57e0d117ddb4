"""django-q2 entry point of the delivery engine: the outbox relay queues batches of ids here."""

from integrations.deliveries.services import deliveries_attempt

__all__ = ("delivery_send_batch",)


def delivery_send_batch(delivery_ids: list[int]) -> dict[int, str | None]:
    return deliveries_attempt(delivery_ids=delivery_ids)
