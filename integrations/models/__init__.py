from integrations.deliveries.models import DeadLetter, Delivery, DeliveryAttempt
from integrations.models.heartbeat import ProcessHeartbeat
from integrations.models.integration import Integration
from integrations.models.limits import CircuitBreaker, RateLimitWindow

__all__ = (
    "CircuitBreaker",
    "DeadLetter",
    "Delivery",
    "DeliveryAttempt",
    "Integration",
    "ProcessHeartbeat",
    "RateLimitWindow",
)
