"""Circuit breakers, read-only: which providers and regions are being held off, and until when.

A breaker is shared by every customer of its provider and region, so its last error and failing
deliveries may concern customers the caller cannot see: only admin keys get them."""

from rest_framework import generics, serializers

from config.api.permissions import is_admin
from integrations.limits.selectors import breaker_list
from integrations.models import CircuitBreaker

__all__ = ("BreakerListView",)


class BreakerSerializer(serializers.ModelSerializer):
    """What any key may see: whether a provider and region are held off, and until when."""

    provider = serializers.CharField(source="provider_key")

    class Meta:
        model = CircuitBreaker
        fields = ["provider", "region", "state", "probe_due", "opened_at", "open_until"]


class BreakerDetailSerializer(BreakerSerializer):
    """Admin keys only: the error and the count of failing deliveries behind the state."""

    failure_count = serializers.SerializerMethodField()

    class Meta(BreakerSerializer.Meta):
        fields = [
            *BreakerSerializer.Meta.fields,
            "failure_count",
            "probe_until",
            "last_error",
            "updated_at",
        ]

    def get_failure_count(self, breaker) -> int:
        return len(breaker.failing_deliveries)


class BreakerListView(generics.ListAPIView):
    """Breakers that have seen failures; a provider+region not listed is closed."""

    serializer_class = BreakerDetailSerializer

    def get_serializer_class(self):
        return BreakerDetailSerializer if is_admin(self.request) else BreakerSerializer

    def get_queryset(self):
        return breaker_list()
