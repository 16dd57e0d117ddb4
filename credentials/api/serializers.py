from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from credentials.models import Credential, CredentialVersion
from credentials.services import DEFAULT_GRACE_SECONDS
from customers.models import Region, Tier
from customers.selectors import customers_visible_to

__all__ = (
    "CredentialCreateSerializer",
    "CredentialRevokeSerializer",
    "CredentialRotateSerializer",
    "CredentialSerializer",
    "CredentialVersionSerializer",
)


class CredentialVersionSerializer(serializers.ModelSerializer):
    hint = serializers.CharField(read_only=True)

    class Meta:
        model = CredentialVersion
        fields = ["version", "state", "hint", "created_at", "grace_until", "last_used_at"]
        read_only_fields = fields


class CredentialSerializer(serializers.ModelSerializer):
    """Metadata, versions and hints: nothing here can carry a secret."""

    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    region = serializers.SlugRelatedField(slug_field="code", read_only=True)
    tier = serializers.SerializerMethodField()
    current_version = serializers.SerializerMethodField()
    versions = CredentialVersionSerializer(many=True, read_only=True)

    class Meta:
        model = Credential
        fields = [
            "id",
            "provider",
            "purpose",
            "customer",
            "region",
            "tier",
            "label",
            "allow_cross_region",
            "enabled",
            "current_version",
            "versions",
            "created_at",
            "rotated_at",
        ]
        read_only_fields = fields

    def get_tier(self, credential) -> str | None:
        return credential.tier or None

    def get_current_version(self, credential) -> int | None:
        # Iterates the prefetched versions instead of querying once more per credential.
        current = [v.version for v in credential.versions.all() if v.state == "current"]
        return current[0] if current else None


@extend_schema_field(OpenApiTypes.STR)
class VisibleCustomerField(serializers.SlugRelatedField):
    """A customer slug, looked up only among the customers the request's API key may see."""

    def get_queryset(self):
        return customers_visible_to(self.context["request"].auth)


class CredentialCreateSerializer(serializers.Serializer):
    provider = serializers.CharField()
    purpose = serializers.CharField(default=Credential.Purpose.API)
    customer = VisibleCustomerField(
        slug_field="slug",
        allow_null=True,
        default=None,
        error_messages={"does_not_exist": "Unknown customer '{value}'."},
    )
    region = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Region.objects.all(),
        allow_null=True,
        default=None,
        error_messages={"does_not_exist": "Unknown region '{value}'."},
    )
    tier = serializers.ChoiceField(choices=Tier.choices, allow_null=True, default=None)
    label = serializers.CharField(allow_blank=True, default="", max_length=200)
    allow_cross_region = serializers.BooleanField(default=False)
    fields = serializers.DictField(child=serializers.CharField(allow_blank=True), write_only=True)


class CredentialRotateSerializer(serializers.Serializer):
    fields = serializers.DictField(child=serializers.CharField(allow_blank=True), write_only=True)
    # Range checks stay in the service so API, admin and command give the same error.
    grace_seconds = serializers.IntegerField(default=DEFAULT_GRACE_SECONDS)
    reason = serializers.CharField(allow_blank=True, default="", max_length=1000)


class CredentialRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, default="", max_length=1000)
    include_current = serializers.BooleanField(
        default=False,
        help_text="Also revoke the current version and disable the credential.",
    )
