"""django-q2 entry points. Each takes ids and calls one service."""

__all__ = ("inbound_events_process",)


def inbound_events_process(event_ids: list[int]) -> dict[int, str]:
    from webhooks.services import inbound_events_process as process

    return process(event_ids=event_ids)
