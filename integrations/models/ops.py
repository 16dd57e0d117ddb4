"""Operational notifications (``integrations/ops``): what was worth telling an operator, and
whether the ops webhook and the ops emails got it."""

from django.db import models

__all__ = ("OpsNotification",)


class OpsNotification(models.Model):
    """One notification of one subject (a breaker, a subscription, a credential version …);
    repeats of the same type and subject within the rate-limit window only count here."""

    class Type(models.TextChoices):
        BREAKER_OPENED = "breaker.opened", "Breaker opened"
        BREAKER_CLOSED = "breaker.closed", "Breaker closed"
        SUBSCRIPTION_DISABLED = "subscription.disabled", "Subscription disabled"
        DEAD_LETTERS_RISING = "dead_letters.rising", "Dead letters rising"
        CREDENTIAL_GRACE_IN_USE = "credential.grace_in_use", "Credential in grace still used"
        MASTER_KEY_IN_USE = "master_key.in_use", "Old master key still in use"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (attempts exhausted)"
        NOT_SENT = "not_sent", "Not sent (no ops webhook configured)"

    type = models.CharField(max_length=40, choices=Type.choices)
    subject = models.CharField(
        max_length=200,
        help_text="What it is about; one notification per type and subject per "
        "rate-limit window (SWITCHYARD_OPS_NOTIFY_WINDOW_SECONDS).",
    )
    data = models.JSONField(help_text="The event's data, as sent.")
    repeats = models.PositiveIntegerField(
        default=0, help_text="Later occurrences within the window, not sent again."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["type", "subject", "created_at"], name="ops_subject_recent"),
            models.Index(fields=["status", "next_attempt_at"], name="ops_due"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.subject}"
