"""Serializer building blocks shared by the apps' APIs."""

import functools
from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.settings import api_settings

__all__ = ("KnownFieldsSerializer", "shared_serializer", "validated")


@functools.cache
def shared_serializer(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """One unbound instance of ``serializer_class`` per process, for ``run_validation`` and
    ``to_representation`` on a hot path: DRF builds (deep-copies) every field anew for each
    instance, which costs more than the validation itself. Only for serializers that keep no
    per-call state (no ``initial_data``, ``context`` or ``instance`` in their methods)."""
    return serializer_class()


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """``data`` validated by the shared instance of ``serializer_class``; raises the
    ``ValidationError`` that ``is_valid(raise_exception=True)`` would, errors keyed by field."""
    try:
        return shared_serializer(serializer_class).run_validation(data)
    except serializers.ValidationError as exc:
        if isinstance(exc.detail, dict):
            raise
        raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.detail}) from None


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
