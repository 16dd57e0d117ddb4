from integrations.models.heartbeat import ProcessHeartbeat
from integrations.models.integration import Integration

__all__ = ("Integration", "ProcessHeartbeat")
