"""django-q2 entry points of the integrations app outside the delivery engine (whose task is in
integrations/deliveries/tasks.py)."""

from integrations.heartbeats import heartbeat_record

__all__ = ("worker_heartbeat",)


def worker_heartbeat() -> None:
    """Queued by the dispatcher; running it proves a worker consumes the broker."""
    heartbeat_record(role="worker")
