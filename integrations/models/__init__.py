from integrations.models.heartbeat import ProcessHeartbeat

__all__ = ("ProcessHeartbeat",)
