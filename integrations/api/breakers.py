"""Circuit breakers, read-only: which providers and regions are being held off, and until when."""

from rest_framework import generics, serializers

from integrations.limits.selectors import breaker_list
from integrations.models import CircuitBreaker

__all__ = ("BreakerListView",)


class BreakerSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider_key")
    failure_count = serializers.SerializerMethodField()

    class Meta:
        model = CircuitBreaker
        fields = [
            "provider",
            "region",
            "state",
            "probe_due",
            "failure_count",
            "opened_at",
            "open_until",
            "probe_until",
            "last_error",
            "updated_at",
        ]

    def get_failure_count(self, breaker) -> int:
        return len(breaker.failing_deliveries)


class BreakerListView(generics.ListAPIView):
    """Breakers that have seen failures; a provider+region not listed is closed."""

    serializer_class = BreakerSerializer

    def get_queryset(self):
        return breaker_list()
