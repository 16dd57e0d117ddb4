from django.db import models
from django.utils import timezone

__all__ = ("CircuitBreaker", "RateLimitWindow")


class RateLimitWindow(models.Model):
    """Shared state of one rate-limit scope (a credential, or a key several credentials share)
    when Redis is not configured. Rows are locked while read and written, so every process on
    every machine sees the same window."""

    key = models.CharField(max_length=200, unique=True)
    hits = models.JSONField(
        default=list, help_text="Send times (epoch seconds) inside the current sliding window."
    )
    next_slots = models.JSONField(
        default=dict,
        help_text="Customer id -> epoch seconds of its next deferred send: deferred work is "
        "spread at the allowed rate, and each customer queues behind its own backlog only.",
    )
    cooldown_until = models.FloatField(
        default=0, help_text="Epoch seconds until which the provider asked us to stop (429)."
    )

    def __str__(self) -> str:
        return self.key


class CircuitBreaker(models.Model):
    """A circuit breaker per provider and region.

    Without Redis this row is the breaker's state; with Redis the state lives there and this row
    mirrors every transition, so the admin and the API read one place either way."""

    class State(models.TextChoices):
        CLOSED = "closed", "Closed"
        OPEN = "open", "Open"
        HALF_OPEN = "half_open", "Half-open (probing)"

    provider_key = models.CharField(max_length=32)
    region = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.CLOSED)
    failing_deliveries = models.JSONField(
        default=list,
        help_text="Deliveries that failed in the current run of consecutive failures; the "
        "breaker opens when enough distinct ones did, so one delivery's retries alone never do.",
    )
    opened_at = models.DateTimeField(
        null=True, blank=True, help_text="Start of the current cool-off (a failed probe renews it)."
    )
    first_opened_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it opened after being closed: kept while probes fail, so an operator "
        "sees how long the provider has been down.",
    )
    open_until = models.DateTimeField(
        null=True, blank=True, help_text="End of the cool-off; then one probe is let through."
    )
    probe_until = models.DateTimeField(
        null=True, blank=True, help_text="Lease of the probe in flight while half-open."
    )
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_key", "region"]
        constraints = [
            models.UniqueConstraint(fields=["provider_key", "region"], name="breaker_unique_scope")
        ]

    def __str__(self) -> str:
        return f"{self.provider_key}/{self.region or '-'}: {self.state}"

    @property
    def probe_due(self) -> bool:
        """Open, but the cool-off is over: the next send becomes the probe."""
        return (
            self.state == self.State.OPEN
            and self.open_until is not None
            and self.open_until <= timezone.now()
        )
