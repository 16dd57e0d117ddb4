"""Properties of the input validators behind the provider registry: whatever JSON a caller sends
as an operation's input, a capability's input or an integration's config, validation ends in
a result or a ``ValidationError`` (a 400 naming the field), never in another exception (a 500)."""

import json

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from hypothesis import event, given
from hypothesis import strategies as st
from rest_framework import serializers

from integrations.capabilities import CAPABILITIES
from integrations.providers.config import BaseUrlField
from integrations.registry import providers
from tests.property.strategies import json_values

OPERATIONS = [
    pytest.param(operation.input_serializer, id=f"{provider.key}.{operation.name}")
    for provider in providers()
    for operation in [*provider.operations.values(), provider.check_operation]
    if operation is not None
]
PROVIDERS = [pytest.param(provider, id=provider.key) for provider in providers()]
# A config per provider with a capability, whose stages are ids the provider accepts.
CAPABILITY_CONFIGS = {
    "trello": {"stages": {"todo": "a" * 24, "done": "b" * 24}},
    "miro": {"board_id": "uXjVOfjmLd4=", "stages": {"todo": "3458764517", "done": "3458764518"}},
}


def _shaped(field) -> st.SearchStrategy:
    """Input shaped like ``field`` expects, down to values its leaves accept; any part may be
    any JSON instead, so refusals come from every depth."""
    if isinstance(field, serializers.ListSerializer | serializers.ListField):
        return _mostly(st.lists(_shaped(field.child), max_size=3))
    if isinstance(field, serializers.Serializer):
        fields = field.fields.items()
        required = {name: _shaped(child) for name, child in fields if child.required}
        optional = {name: _shaped(child) for name, child in fields if not child.required}
        return _mostly(st.fixed_dictionaries(required, optional=optional))
    if isinstance(field, serializers.DictField):
        return _mostly(st.dictionaries(st.text(max_size=12), _shaped(field.child), max_size=3))
    return _mostly(_leaf(field))


def _mostly(shaped: st.SearchStrategy) -> st.SearchStrategy:
    return st.integers(0, 3).flatmap(lambda n: shaped if n else json_values)


def _leaf(field) -> st.SearchStrategy:
    if isinstance(field, BaseUrlField):
        # Loopback is allowed for tests; other names resolve to a public test address.
        return st.from_regex(
            r"https?://(127\.0\.0\.1:9100|[a-z]{1,10}\.example)(/[a-z]{0,9})?", fullmatch=True
        )
    # Before the patterns: Django's URLValidator is a RegexValidator too.
    if isinstance(field, serializers.URLField):
        return st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9/]{0,20}", fullmatch=True)
    patterns = [v.regex for v in field.validators if isinstance(v, RegexValidator)]
    if patterns:
        return st.from_regex(patterns[0], fullmatch=True)
    if isinstance(field, serializers.ChoiceField):
        return st.sampled_from(sorted(field.choices))
    if isinstance(field, serializers.BooleanField):
        return st.booleans()
    if isinstance(field, serializers.IntegerField):
        return st.integers(field.min_value, field.max_value)
    if isinstance(field, serializers.FloatField):
        return st.floats(field.min_value, field.max_value, allow_nan=False, allow_infinity=False)
    if isinstance(field, serializers.CharField):
        return st.text(min_size=1, max_size=min(field.max_length or 40, 40))
    return json_values


def _validate(serializer: serializers.Serializer):
    """``validated_data`` if valid, else None; anything but a ValidationError escapes."""
    valid = serializer.is_valid()
    event("valid" if valid else "refused")
    if not valid:
        assert serializer.errors
        return None
    # What the actions module stores: it must serialise.
    return json.loads(json.dumps(serializer.validated_data, cls=DjangoJSONEncoder))


@pytest.mark.parametrize("input_serializer", OPERATIONS)
@given(data=st.data())
def test_operation_input_validates_or_is_refused(input_serializer, data):
    payload = data.draw(_shaped(input_serializer()), label="input")
    _validate(input_serializer(data=payload))


@pytest.mark.parametrize("provider", PROVIDERS)
@given(data=st.data())
def test_integration_config_validates_or_is_refused(provider, data):
    config = data.draw(_shaped(provider.config_serializer()), label="config")
    try:
        cleaned = provider.clean_config(config)
    except serializers.ValidationError as exc:
        event("refused")
        assert exc.detail
        return
    event("valid")
    assert isinstance(cleaned, dict)


def test_every_provider_with_a_capability_has_a_config_here():
    assert {p.key for p in providers() if p.capabilities} == set(CAPABILITY_CONFIGS)


@pytest.mark.parametrize("key", sorted(CAPABILITY_CONFIGS))
@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
@given(data=st.data())
def test_capability_input_translates_to_valid_or_refused_operation_input(key, capability, data):
    """As ``actions.action_prepare`` runs it: the capability's own input, its stage names, then
    the provider's translation, validated as the operation's input."""
    provider = next(p for p in providers() if p.key == key)
    binding = provider.capabilities.get(capability)
    if binding is None:
        return
    config = CAPABILITY_CONFIGS[key]
    stage = st.sampled_from(sorted(config["stages"])) | st.text(max_size=8)
    shaped = st.fixed_dictionaries(
        {"item": st.text(max_size=30) | json_values, "to": stage},
        optional={
            "from": stage,
            "options": st.fixed_dictionaries(
                {},
                optional={
                    "pos": json_values,
                    "position": st.fixed_dictionaries({"x": json_values, "y": json_values})
                    | json_values,
                },
            )
            | json_values,
        },
    )
    payload = data.draw(shaped | json_values, label="input")
    spec = CAPABILITIES[capability]

    validated = _validate(spec.input_serializer(data=payload))
    if validated is None:
        return
    if any(validated.get(name, "todo") not in config["stages"] for name in spec.stage_fields):
        return  # actions refuses an unknown stage name before translating
    operation = provider.operations[binding.operation]
    _validate(operation.input_serializer(data=binding.translate_input(validated, config)))
