from rest_framework import serializers

from customers.models import Customer
from integrations.models import Integration
from integrations.providers.types import Outcome
from integrations.registry import ProviderNotRegistered, get_provider, provider_keys

__all__ = ("ActionValidateSerializer", "CheckResultSerializer", "IntegrationSerializer")


class IntegrationSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Customer.objects.none(),
        error_messages={"does_not_exist": "Unknown customer '{value}'."},
    )
    provider = serializers.CharField(
        source="provider_key", max_length=32, help_text="A key from GET /api/v1/providers/."
    )
    config = serializers.JSONField(
        required=False, default=dict, help_text="Non-secret settings; see the provider's 'config'."
    )

    class Meta:
        model = Integration
        fields = [
            "id",
            "customer",
            "provider",
            "config",
            "active",
            "trusted",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def __init__(self, *args, customers=None, **kwargs):
        super().__init__(*args, **kwargs)
        if customers is not None:
            # A restricted API key cannot even name customers it may not see.
            self.fields["customer"].queryset = customers

    def validate_provider(self, key):
        try:
            get_provider(key)
        except ProviderNotRegistered:
            raise serializers.ValidationError(
                f"Unknown provider '{key}'. Known providers: {', '.join(provider_keys())}."
            ) from None
        return key

    def validate(self, attrs):
        # A change (PATCH) is checked as a creation is: the config it leaves in place must
        # suit the provider it leaves in place.
        saved = self.instance
        if saved is not None and not {"provider_key", "config"} & set(attrs):
            return attrs
        provider = get_provider(attrs.get("provider_key", getattr(saved, "provider_key", None)))
        config = attrs.get("config", getattr(saved, "config", None))
        try:
            attrs["config"] = provider.clean_config(config)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"config": exc.detail}) from None
        return attrs


class CheckResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    status = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    error_class = serializers.CharField(allow_blank=True)
    retry_after = serializers.FloatField(allow_null=True)
    duration_ms = serializers.IntegerField()
    result = serializers.JSONField(allow_null=True)


class ActionValidateSerializer(serializers.Serializer):
    """The body of a delivery, checked without queueing anything."""

    customer = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Customer.objects.none(),
        error_messages={"does_not_exist": "Unknown customer '{value}'."},
    )
    action = serializers.CharField(max_length=100)
    input = serializers.JSONField(default=dict)

    def __init__(self, *args, customers=None, **kwargs):
        super().__init__(*args, **kwargs)
        if customers is not None:
            self.fields["customer"].queryset = customers
