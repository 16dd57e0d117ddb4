from rest_framework import serializers

from customers.models import Customer, Region, Tier

__all__ = ("CustomerSerializer", "CustomerUpdateSerializer", "RegionSerializer")


class RegionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Region
        fields = ["code", "name", "created_at"]
        read_only_fields = ["created_at"]


class CustomerSerializer(serializers.ModelSerializer):
    region = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Region.objects.all(),
        error_messages={"does_not_exist": "Unknown region '{value}'."},
    )
    tier = serializers.ChoiceField(choices=Tier.choices, default=Tier.STANDARD)

    class Meta:
        model = Customer
        fields = ["slug", "name", "region", "tier", "active", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class CustomerUpdateSerializer(CustomerSerializer):
    class Meta(CustomerSerializer.Meta):
        read_only_fields = ["slug", "created_at", "updated_at"]
