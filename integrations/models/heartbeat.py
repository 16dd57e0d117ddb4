from django.db import models

__all__ = ("ProcessHeartbeat",)


class ProcessHeartbeat(models.Model):
    """The last sign of life of one Switchyard process; /readyz and the dashboard read these."""

    class Role(models.TextChoices):
        WORKER = "worker", "Worker"
        DISPATCHER = "dispatcher", "Dispatcher"

    role = models.CharField(max_length=16, choices=Role.choices)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "host", "pid"], name="heartbeat_unique_process")
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.host}:{self.pid}"
