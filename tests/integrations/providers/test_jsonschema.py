"""An input's JSON Schema promises acceptance: what it admits, the serializer accepts."""

import re

import jsonschema
import pytest
from django.core.validators import URLValidator
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from config.api.schema import NOT_BLANK_PATTERN
from integrations.providers.jsonschema import ACCEPTED_URL, json_schema, openapi_schema


class Sample(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    note = serializers.CharField(required=False, allow_blank=True)
    tag = serializers.RegexField(r"^[^,]{1,5}$")
    code = serializers.RegexField(r"^[a-z]{2}$")
    parent = serializers.CharField(allow_null=True)
    count = serializers.IntegerField(min_value=1, max_value=9, default=3)
    tags = serializers.ListField(child=serializers.CharField(), allow_empty=False, max_length=4)
    kind = serializers.ChoiceField(choices=["a", "b"])
    callback = serializers.URLField()


SCHEMA = json_schema(Sample)


def test_fields_render_as_json_schema():
    properties = SCHEMA["properties"]
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert set(SCHEMA["required"]) == {"name", "tag", "code", "parent", "tags", "kind", "callback"}
    assert properties["name"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 10,
        "pattern": NOT_BLANK_PATTERN,
    }
    assert properties["note"] == {"type": "string"}
    # DRF trims before it checks: a blank-only tag would be refused though the regex admits it.
    assert properties["tag"]["pattern"] == rf"^(?=[\s\S]*{NOT_BLANK_PATTERN})[^,]{{1,5}}$"
    assert properties["code"]["pattern"] == "^[a-z]{2}$"
    assert properties["parent"]["type"] == ["string", "null"]
    assert properties["count"] == {"type": "integer", "minimum": 1, "maximum": 9, "default": 3}
    assert (properties["tags"]["minItems"], properties["tags"]["maxItems"]) == (1, 4)
    assert properties["kind"] == {"type": "string", "enum": ["a", "b"]}


def test_openapi_spelling_marks_nullable():
    assert openapi_schema(SCHEMA)["properties"]["parent"]["nullable"] is True
    assert "$schema" not in openapi_schema(SCHEMA)


@pytest.mark.parametrize("value", [" ", "\t", " \n ", "\x1e", "\x85\u3000"])
def test_a_blank_value_the_schema_refuses_the_serializer_refuses(value):
    body = {"name": "n", "tag": value, "code": "ab", "parent": None, "tags": ["t"], "kind": "a"}
    body["callback"] = "https://example.com/"
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(body)
    assert not Sample(data=body).is_valid()


@settings(max_examples=50, deadline=None)
@given(st.from_regex(ACCEPTED_URL, fullmatch=True))
def test_every_url_the_schema_admits_django_accepts(url):
    assert re.search(ACCEPTED_URL, url)
    URLValidator()(url)
