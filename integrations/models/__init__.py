from integrations.deliveries.models import DeadLetter, Delivery, DeliveryAttempt
from integrations.models.heartbeat import ProcessHeartbeat
from integrations.models.integration import Integration
from integrations.models.limits import CircuitBreaker, RateLimitWindow
from integrations.models.ops import OpsNotification
from integrations.models.rollup import CounterRollup, DeliveryRollup, RollupCursor

__all__ = (
    "CircuitBreaker",
    "CounterRollup",
    "DeadLetter",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryRollup",
    "Integration",
    "OpsNotification",
    "ProcessHeartbeat",
    "RateLimitWindow",
    "RollupCursor",
)
