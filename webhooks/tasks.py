"""django-q2 entry points. Each takes ids and calls one service."""

__all__ = ("inbound_events_process", "miro_board_poll")


def inbound_events_process(event_ids: list[int]) -> dict[int, str]:
    from webhooks.services import inbound_events_process as process

    return process(event_ids=event_ids)


def miro_board_poll(endpoint_id: int) -> dict:
    from webhooks.sources.miro_poll import miro_board_poll as poll

    result = poll(endpoint_id=endpoint_id)
    return {"pages": result.pages, "events": result.events, "complete": result.complete}
