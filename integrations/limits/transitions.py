"""What follows a circuit breaker's change of state, whoever changed it (a send's result in a
worker, an operator in the admin): a log line and an operational notification."""

import structlog
from django.utils import timezone

from integrations.models import CircuitBreaker, OpsNotification
from integrations.ops.services import ops_notify

__all__ = ("breaker_transitioned",)

logger = structlog.stdlib.get_logger(__name__)

_NOTIFIED = {
    CircuitBreaker.State.OPEN: OpsNotification.Type.BREAKER_OPENED,
    CircuitBreaker.State.CLOSED: OpsNotification.Type.BREAKER_CLOSED,
}


def breaker_transitioned(*, provider: str, region: str, state: str) -> None:
    """``state`` is the breaker's new state. A failed probe re-opens an open breaker: the same
    subject within the window, so it counts as a repeat rather than a second notification.
    The provider's error stays out: it goes to the admin, not to another system."""
    logger.warning("limits.breaker", provider=provider, region=region, state=state)
    notification_type = _NOTIFIED.get(state)
    if notification_type is None:
        return
    data = {"provider": provider, "region": region, "at": timezone.now().isoformat()}
    ops_notify(type=notification_type, subject=f"breaker:{provider}/{region or '-'}", data=data)
