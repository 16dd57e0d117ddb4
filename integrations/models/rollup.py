"""Aggregates the admin dashboard reads instead of the attempt log: counts, success and a
latency histogram per time bucket, provider and customer; counters of events recorded elsewhere
(rejected signatures). A dispatcher step maintains them (integrations/dashboard/rollups.py)."""

from django.db import models

__all__ = ("LATENCY_BOUNDS_MS", "CounterRollup", "DeliveryRollup", "RollupCursor")

# Upper bounds (ms) of the latency histogram's buckets; the last bucket is everything slower.
# p50 / p95 are read as "at most <bound>", which a rollup can answer without the raw rows.
LATENCY_BOUNDS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


class DeliveryRollup(models.Model):
    """Attempts that started in one bucket (a minute for the last hour's figures, an hour for
    the day's and the week's), for one provider and customer."""

    class Span(models.IntegerChoices):
        MINUTE = 60, "Minute"
        HOUR = 3600, "Hour"

    bucket = models.DateTimeField(help_text="Start of the bucket.")
    span = models.PositiveIntegerField(choices=Span.choices)
    provider_key = models.CharField(max_length=32)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    attempts = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveBigIntegerField(default=0, help_text="Sum, for the mean.")
    latency = models.JSONField(
        default=list, help_text="Attempts per latency bucket (LATENCY_BOUNDS_MS, then slower)."
    )

    class Meta:
        constraints = [
            # Also the index of the dashboard's window reads and of retention (bucket first).
            models.UniqueConstraint(
                fields=["bucket", "span", "provider_key", "customer"], name="rollup_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.provider_key}/{self.customer_id}"


class CounterRollup(models.Model):
    """How much a counter kept elsewhere grew in one minute (the difference of its totals)."""

    bucket = models.DateTimeField()
    name = models.CharField(max_length=64)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "name"], name="counter_rollup_unique")
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.name}={self.count}"


class RollupCursor(models.Model):
    """How far a rollup has read (the last attempt id, the last totals of counters)."""

    name = models.CharField(max_length=64, unique=True)
    state = models.JSONField(default=dict)

    def __str__(self) -> str:
        return self.name
