from django.db import models

__all__ = ("OutboxItem",)


class OutboxItem(models.Model):
    """Fields of a row that is its own queue entry (deliveries, inbound events): django-q2 only
    carries its id, while attempts, the next attempt time and the worker's lease live here, so a
    lost broker message or a killed worker delays the work but never loses it."""

    attempts = models.PositiveIntegerField(default=0)
    attempt_limit = models.PositiveIntegerField(
        help_text="Attempt number after which retryable failures dead-letter."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A task for it is in the broker until then; afterwards the dispatcher "
        "enqueues it again, so a lost broker message only delays it.",
    )
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True
