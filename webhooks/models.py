"""Inbound endpoints and events; outbound subscriptions of internal apps, whose signing secrets
are credential versions (purpose ``subscription_signing``) in the credentials vault."""

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from integrations.outbox.models import OutboxItem

__all__ = (
    "DeadInboundEvent",
    "EndpointSource",
    "InboundEvent",
    "PolledItem",
    "Subscription",
    "WebhookEndpoint",
)


# A wider window lets a captured request be replayed for longer; an hour is plenty for a clock
# that is off.
MAX_TOLERANCE_SECONDS = 3600


class EndpointSource(models.TextChoices):
    """How an endpoint's events arrive. Whatever the way, they take the same store path (one
    de-duplicated row per provider event) and are processed from the same outbox."""

    WEBHOOK = "webhook", "Webhooks (the provider POSTs to the receive URL)"
    MIRO_POLL = "miro_poll", "Miro board polling"
    SQS = "sqs", "Amazon SQS queue (Shopify's EventBridge delivery)"
    AMQP = "amqp", "AMQP 0-9-1 queue (RabbitMQ)"


class WebhookEndpoint(models.Model):
    """Where one customer's provider events arrive: webhooks at a URL carrying ``public_id``
    (never the pk), or a source Switchyard reads itself (a polled board, a queue)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    provider = models.CharField(
        max_length=32, help_text="Key of a provider that verifies webhooks."
    )
    credential = models.ForeignKey(
        "credentials.Credential",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="webhook_endpoints",
        # Never a subscription's signing secret (nor an API credential), also in the admin.
        limit_choices_to={"purpose": "webhook_signing"},
        help_text="The webhook_signing credential; every unexpired version is tried. Webhook "
        "endpoints only: events read from a queue or a polled board carry no signature.",
    )
    source = models.CharField(
        max_length=16,
        choices=EndpointSource.choices,
        default=EndpointSource.WEBHOOK,
        help_text="How events arrive; only webhook endpoints answer at the receive URL.",
    )
    source_config = models.JSONField(
        default=dict,
        blank=True,
        help_text="Non-secret settings of the source (queue URL, AMQP URL without password, "
        "board id, interval); see docs/providers/ and the README.",
    )
    source_credential = models.ForeignKey(
        "credentials.Credential",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="event_sources",
        limit_choices_to={"purpose": "api"},
        help_text="The broker's credential (an amazon_sqs or amqp api credential). Miro "
        "polling uses the customer's Miro API credential from the vault instead.",
    )
    source_state = models.JSONField(
        default=dict, blank=True, editable=False, help_text="Cursor and high-water marks."
    )
    source_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    source_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    source_error = models.TextField(blank=True, editable=False)
    source_seen_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Last successful poll or message."
    )
    active = models.BooleanField(default=True, help_text="Inactive endpoints answer 404.")
    tolerance_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_TOLERANCE_SECONDS)],
        help_text="How far a signed timestamp may be from now, in seconds; empty for the "
        "provider's default (300 for Stripe and Standard Webhooks). Only for schemes that sign "
        "a timestamp (not Shopify or Trello).",
    )
    rejected_signatures = models.PositiveIntegerField(
        default=0, editable=False, help_text="Requests refused with 401 (bad or stale signature)."
    )
    last_rejected_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["source_due_at"],
                condition=~models.Q(source="webhook"),
                name="endpoint_source_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} for {self.customer_id} ({self.public_id})"

    @property
    def path(self) -> str:
        return reverse(
            "webhooks:receive", kwargs={"provider": self.provider, "endpoint_id": self.public_id}
        )


class PolledItem(models.Model):
    """One item of a polled board as last listed: its own ``modifiedAt`` mark (a change is a
    different one) and the scan that last saw it (absent from a complete scan: deleted)."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="polled_items", db_index=False
    )
    item_id = models.CharField(max_length=100)
    item_type = models.CharField(max_length=50, blank=True)
    modified_at = models.CharField(max_length=40, help_text="modifiedAt as the provider sent it.")
    seen_scan = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "item_id"], name="polled_item_unique")
        ]

    def __str__(self) -> str:
        return f"{self.item_id} @ {self.modified_at}"


class InboundEvent(OutboxItem):
    """One verified webhook, stored raw before it is acknowledged, then processed from here.

    Like a delivery it is an outbox row: django-q2 only carries its id; attempts, the lease and
    the next attempt time live here, so a lost task or a dead worker only delays processing."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (event type not handled)"
        FAILED = "failed", "Failed (will retry)"
        DEAD = "dead", "Dead letter"

    key = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Stable Switchyard event id (the envelope's id).",
    )
    # No index of its own: the unique constraint on (endpoint, external_id) starts with it.
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    provider = models.CharField(max_length=32)
    external_id = models.CharField(
        max_length=255, help_text="The provider's event or delivery id, used to de-duplicate."
    )
    type = models.CharField(max_length=200, blank=True, help_text="Switchyard event type.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    body = models.BinaryField(help_text="The request body exactly as received (signed bytes).")
    headers = models.JSONField(
        default=dict, help_text="Request headers, without credential or signature headers."
    )
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    signature_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Version of the signing credential that matched."
    )
    trace_parent = models.CharField(
        max_length=55,
        null=True,
        blank=True,
        editable=False,
        help_text="W3C traceparent of the receipt (only while tracing is on): its processing's "
        "span joins that trace.",
    )
    envelope = models.JSONField(null=True, blank=True, help_text="The normalised event.")
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [("replay_inboundevent", "Can replay inbound events")]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "external_id"], name="inbound_event_unique_external_id"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="inbound_event_due"),
            # Lease recovery and the relay's count of queued events. Partial: a received event
            # is in neither, so accepting one writes no entry to them.
            models.Index(
                fields=["lease_until"],
                condition=models.Q(status="processing"),
                name="inbound_event_lease",
            ),
            models.Index(
                fields=["enqueued_until"],
                condition=models.Q(enqueued_until__isnull=False),
                name="inbound_event_enqueued",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.provider} {self.type or self.external_id} ({self.status})"


class DeadInboundEventManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(status=InboundEvent.Status.DEAD)


class DeadInboundEvent(InboundEvent):
    """Inbound events whose processing gave up (an admin screen of their own)."""

    objects = DeadInboundEventManager()

    class Meta:
        proxy = True
        verbose_name = "inbound dead letter"


class Subscription(models.Model):
    """An internal app's URL receiving Switchyard events, signed per Standard Webhooks."""

    url = models.CharField(max_length=2000, help_text="http(s) URL the events are POSTed to.")
    event_types = models.JSONField(
        default=list, help_text='Event types: "*" for all, "trello.*" for a prefix, or exact.'
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="subscriptions",
        help_text="Only this customer's events; blank for every customer's.",
    )
    allow_private = models.BooleanField(
        default=False,
        help_text="Allow loopback and private-range destinations (refused otherwise, SSRF).",
    )
    signing_credential = models.OneToOneField(
        "credentials.Credential",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="subscription",
        help_text="Its signing secrets: a subscription_signing credential (scope "
        "'subscription:<id>'), rotated only through this subscription.",
    )
    active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("rotate_subscription_secret", "Can rotate subscription secrets")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"
