"""django-q2 entry points. Each takes an id and calls one service."""

__all__ = ("inbound_event_process",)


def inbound_event_process(event_id: int) -> str | None:
    from webhooks.services import inbound_event_process as process

    return process(event_id=event_id)
