"""django-q2 entry points. Each takes ids or nothing and calls one service."""

from integrations.heartbeats import heartbeat_record

__all__ = ("worker_heartbeat",)


def worker_heartbeat() -> None:
    """Queued by the dispatcher; running it proves a worker consumes the broker."""
    heartbeat_record(role="worker")
