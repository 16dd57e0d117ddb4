"""The delivery engine's tables. They belong to the ``integrations`` app (its models package
imports them), so their labels, tables and migrations are that app's."""

import uuid

from django.db import models
from django.db.models.fields.json import KeyTextTransform

from integrations.outbox.models import OutboxItem
from integrations.providers.types import Outcome

__all__ = ("INBOUND_EVENT_REF", "SEND_ACTION", "DeadLetter", "Delivery", "DeliveryAttempt")

# A fan-out delivery (the webhooks app's send operation) names the inbound event it sends in
# its input; retention keeps an event while such a delivery is kept (webhooks/services).
SEND_ACTION = "standard_webhooks.send"
INBOUND_EVENT_REF = KeyTextTransform("event", "input")


class Delivery(OutboxItem):
    """The outbox row and the source of truth for one call an internal app asked for."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_FLIGHT = "in_flight", "In flight"
        SUCCEEDED = "succeeded", "Succeeded"
        DEAD = "dead", "Dead letter"
        CANCELLED = "cancelled", "Cancelled"

    class DeadReason(models.TextChoices):
        NON_RETRYABLE = "non_retryable", "Provider refused the call"
        AUTH_FAILED = "auth_failed", "Authentication failed"
        ATTEMPTS_EXHAUSTED = "attempts_exhausted", "Retries exhausted"
        CONFIGURATION = "configuration", "Configuration error"
        WORKER_LOST = "worker_lost", "Worker lost during the last attempt"

    key = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Stable id forwarded to providers that accept an idempotency key.",
    )
    # No index of its own: delivery_customer and delivery_customer_due begin with it, and each
    # index is written again at every update of a delivery (none is HOT).
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    api_key = models.ForeignKey(
        "customers.ApiKey",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        help_text="The key that submitted it; Idempotency-Key values are scoped to it.",
    )
    action = models.CharField(max_length=100, help_text="As the caller named it.")
    provider_key = models.CharField(max_length=32)
    operation = models.CharField(max_length=64)
    integration = models.ForeignKey(
        "integrations.Integration",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    input = models.JSONField(help_text="Validated input, already in the provider's terms.")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_id = models.CharField(
        max_length=128,
        null=True,
        blank=True,
        editable=False,
        help_text="X-Request-ID of the API request that created it; its attempts' log lines "
        "carry it.",
    )
    trace_parent = models.CharField(
        max_length=55,
        null=True,
        blank=True,
        editable=False,
        help_text="W3C traceparent of the span that created it (only while tracing is on): its "
        "attempts' spans join that trace.",
    )
    request_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the request body, for Idempotency-Key."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    manual_retry = models.BooleanField(
        default=False, help_text="The next attempt was asked for by an operator."
    )
    last_error = models.TextField(blank=True)
    dead_reason = models.CharField(max_length=32, choices=DeadReason.choices, blank=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        permissions = [("retry_delivery", "Can retry, discard and cancel deliveries")]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="delivery_unique_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["status", "lease_until"], name="delivery_lease"),
            models.Index(fields=["customer", "created_at"], name="delivery_customer"),
            models.Index(fields=["status", "finished_at"], name="delivery_finished"),
            # The relay's per-customer turn and in-flight cap, and its count of queued work.
            models.Index(
                fields=["customer", "status", "next_attempt_at"], name="delivery_customer_due"
            ),
            models.Index(fields=["status", "enqueued_until"], name="delivery_enqueued"),
            # A customer's deliveries in the broker or in flight (the accept path counts them):
            # only those rows, so the count does not read a backlog of pending ones.
            models.Index(
                fields=["customer"],
                condition=models.Q(status="in_flight") | models.Q(enqueued_until__isnull=False),
                name="delivery_customer_queued",
            ),
            # Which fan-out deliveries still refer to an inbound event (retention's check).
            models.Index(
                INBOUND_EVENT_REF,
                condition=models.Q(action=SEND_ACTION),
                name="delivery_inbound_event",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.DEAD, self.Status.CANCELLED)


class DeadLetterManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(status=Delivery.Status.DEAD)


class DeadLetter(Delivery):
    """Deliveries in the dead-letter queue (an admin screen of their own)."""

    objects = DeadLetterManager()

    class Meta:
        proxy = True
        verbose_name = "dead letter"
        ordering = ["-finished_at", "-id"]


class DeliveryAttempt(models.Model):
    """One try of a delivery, with what was sent and received (secrets masked)."""

    class Trigger(models.TextChoices):
        AUTOMATIC = "auto", "Automatic"
        MANUAL = "manual", "Manual retry"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.AUTOMATIC)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_class = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    credential_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Version number of the credential used."
    )
    credential_version_id = models.BigIntegerField(null=True, blank=True)
    request_method = models.CharField(max_length=8, blank=True)
    request_url = models.TextField(blank=True)
    request_headers = models.JSONField(default=dict, blank=True)
    request_body = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    retry_after = models.FloatField(
        null=True, blank=True, help_text="Seconds the provider asked to wait."
    )
    next_delay_seconds = models.FloatField(
        null=True, blank=True, help_text="Delay chosen before the next attempt, if any."
    )

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number")
        ]

    def __str__(self) -> str:
        return f"#{self.delivery_id} attempt {self.number}: {self.outcome}"
