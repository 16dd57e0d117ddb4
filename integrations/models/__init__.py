from integrations.models.delivery import DeadLetter, Delivery, DeliveryAttempt
from integrations.models.heartbeat import ProcessHeartbeat
from integrations.models.integration import Integration

__all__ = ("DeadLetter", "Delivery", "DeliveryAttempt", "Integration", "ProcessHeartbeat")
