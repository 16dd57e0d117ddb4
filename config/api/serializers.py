"""Serializer building blocks shared by the apps' APIs."""

from collections.abc import Mapping

from rest_framework import serializers

__all__ = ("KnownFieldsSerializer",)


class KnownFieldsSerializer(serializers.Serializer):
    """Refuses keys it does not know, naming the known ones. For bodies where an ignored key
    would change the outcome: a misspelt filter would otherwise widen a bulk operation to
    everything."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            known = sorted(name for name, field in self.fields.items() if not field.read_only)
            unknown = sorted(set(data) - set(known))
            if unknown:
                message = f"Unknown field. Known fields: {', '.join(known)}."
                raise serializers.ValidationError({name: [message] for name in unknown})
        return super().to_internal_value(data)
