from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from credentials.models import CredentialVersion
from integrations.providers.jsonschema import ACCEPTED_URL
from webhooks.models import (
    MAX_TOLERANCE_SECONDS,
    EndpointSource,
    InboundEvent,
    Subscription,
    WebhookEndpoint,
)
from webhooks.selectors import endpoint_receive_url
from webhooks.services import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS
from webhooks.services.subscriptions import EVENT_TYPE_PATTERN

__all__ = (
    "EndpointCreateSerializer",
    "EndpointSerializer",
    "EndpointUpdateSerializer",
    "InboundEventDetailSerializer",
    "InboundEventFilterSerializer",
    "InboundEventSerializer",
    "RotateSecretSerializer",
    "SecretVersionSerializer",
    "SubscriptionCreateSerializer",
    "SubscriptionSerializer",
)


SOURCE_CONFIG_HELP = (
    "Settings of a source other than webhooks (no secrets): sqs {queue_url, region, "
    "endpoint_url?, wait_seconds?, batch_size?}; amqp {url (no user:password), queue, "
    "prefetch?}; miro_poll {board_id, interval_seconds?, page_size?}."
)


class EndpointCreateSerializer(serializers.Serializer):
    customer = serializers.SlugField(max_length=64)
    provider = serializers.CharField(max_length=32)
    source = serializers.ChoiceField(
        choices=EndpointSource.choices,
        default=EndpointSource.WEBHOOK,
        help_text="How events arrive: webhooks at the receive URL, or a source Switchyard "
        "reads (miro_poll, sqs, amqp).",
    )
    credential = serializers.IntegerField(
        min_value=1, required=False, help_text="A webhook_signing credential (webhook source)."
    )
    source_config = serializers.DictField(
        required=False, default=dict, help_text=SOURCE_CONFIG_HELP
    )
    source_credential = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        default=None,
        help_text="The broker's credential: an amazon_sqs (sqs) or amqp (amqp) api credential "
        "of the customer.",
    )
    active = serializers.BooleanField(default=True)
    tolerance_seconds = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TOLERANCE_SECONDS,
        required=False,
        allow_null=True,
        default=None,
        help_text="How far a signed timestamp may be from now, in seconds (null: the "
        "provider's default, 300 for Stripe and Standard Webhooks). Only for providers that "
        "sign a timestamp.",
    )


class EndpointUpdateSerializer(serializers.Serializer):
    active = serializers.BooleanField(required=False)
    source_config = serializers.DictField(required=False, help_text=SOURCE_CONFIG_HELP)
    source_credential = serializers.IntegerField(min_value=1, required=False, allow_null=True)


class EndpointSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    customer = serializers.CharField(source="customer.slug")
    credential = serializers.IntegerField(source="credential_id", allow_null=True)
    source_credential = serializers.IntegerField(source="source_credential_id", allow_null=True)
    url = serializers.SerializerMethodField(
        help_text="Give this URL to the provider (webhook endpoints; null for other sources)."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "customer",
            "provider",
            "credential",
            "active",
            "tolerance_seconds",
            "rejected_signatures",
            "last_rejected_at",
            "source",
            "source_config",
            "source_credential",
            "source_error",
            "source_seen_at",
            "created_at",
        ]

    def get_url(self, endpoint) -> str | None:
        if endpoint.source != EndpointSource.WEBHOOK:
            return None
        return endpoint_receive_url(endpoint=endpoint, request=self.context.get("request"))


class InboundEventSerializer(serializers.ModelSerializer):
    endpoint = serializers.UUIDField(source="endpoint.public_id")
    customer = serializers.CharField(source="endpoint.customer.slug")

    class Meta:
        model = InboundEvent
        fields = [
            "id",
            "endpoint",
            "customer",
            "provider",
            "external_id",
            "type",
            "status",
            "received_at",
            "processed_at",
            "signature_version",
            "attempts",
            "next_attempt_at",
            "error",
        ]


class InboundEventDetailSerializer(InboundEventSerializer):
    body = serializers.SerializerMethodField(help_text="The raw body as text.")

    class Meta(InboundEventSerializer.Meta):
        fields = [*InboundEventSerializer.Meta.fields, "headers", "body", "envelope"]

    def get_body(self, event) -> str:
        return bytes(event.body).decode("utf-8", errors="replace")


class InboundEventFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=InboundEvent.Status.choices, required=False)
    provider = serializers.CharField(required=False)
    type = serializers.CharField(required=False)
    external_id = serializers.CharField(required=False)
    customer = serializers.SlugField(required=False)
    received_after = serializers.DateTimeField(required=False)
    received_before = serializers.DateTimeField(required=False)


SUBSCRIPTION_URL_MAX_LENGTH = 2000


# The service checks a URL against the egress policy (its host must resolve to a public address,
# or allow_private); the schema states the URLs whose form it accepts (a host name, no IP).
@extend_schema_field(
    {"type": "string", "pattern": ACCEPTED_URL, "maxLength": SUBSCRIPTION_URL_MAX_LENGTH}
)
class SubscriptionUrlField(serializers.CharField):
    pass


@extend_schema_field(
    {"type": "string", "pattern": EVENT_TYPE_PATTERN.pattern, "minLength": 1, "maxLength": 200}
)
class EventTypeField(serializers.CharField):
    """An event type or a pattern of them (``*``, ``trello.*``), as the service checks it."""


class SubscriptionCreateSerializer(serializers.Serializer):
    url = SubscriptionUrlField(
        max_length=SUBSCRIPTION_URL_MAX_LENGTH, help_text="http(s) URL the events are POSTed to."
    )
    event_types = serializers.ListField(child=EventTypeField(max_length=200), min_length=1)
    allow_private = serializers.BooleanField(default=False)
    customer = serializers.SlugField(
        required=False, allow_null=True, help_text="Only this customer's events."
    )


class SecretVersionSerializer(serializers.Serializer):
    """One version of a subscription's signing secret: a hint, never the secret."""

    version = serializers.IntegerField()
    state = serializers.ChoiceField(choices=CredentialVersion.State.choices)
    hint = serializers.CharField()
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Stops (or stopped) signing then; null while current."
    )
    grace_until = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class SubscriptionSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.slug", allow_null=True, default=None)
    secret_versions = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id",
            "url",
            "event_types",
            "customer",
            "allow_private",
            "active",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "secret_versions",
        ]

    @extend_schema_field(SecretVersionSerializer(many=True))
    def get_secret_versions(self, subscription) -> list[dict]:
        credential = subscription.signing_credential
        if credential is None:
            return []
        return [
            {
                "version": v.version,
                "state": v.state,
                "hint": v.hint,
                # When it stops (or stopped) signing: the end of its grace, or its revocation.
                "expires_at": v.grace_until or v.revoked_at,
                "grace_until": v.grace_until,
                "created_at": v.created_at,
                "last_used_at": v.last_used_at,
            }
            for v in sorted(credential.versions.all(), key=lambda v: -v.version)
        ]


class RotateSecretSerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0, max_value=MAX_GRACE_SECONDS, default=DEFAULT_GRACE_SECONDS
    )
