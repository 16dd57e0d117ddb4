"""Google Analytics 4 Measurement Protocol (reference/providers.md §3). GA4 answers 2xx even to
malformed data, so every documented limit is enforced here before anything is sent."""

import json
import re

from rest_framework import serializers

from integrations.providers.base import BaseProvider
from integrations.providers.config import NoInput
from integrations.providers.types import (
    CallContext,
    CredentialField,
    CredentialPurpose,
    Operation,
    ProviderRequest,
    ProviderResponse,
    Rejected,
)
from integrations.registry import register

__all__ = ("GA4Provider",)

COLLECT_PATH = "/mp/collect"
DEBUG_COLLECT_PATH = "/debug/mp/collect"
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
NAME_RULE = "must start with a letter and contain only letters, digits and underscores"
MAX_EVENTS = 25
MAX_EVENT_PARAMS = 25
MAX_NAME_LENGTH = 40
MAX_PARAM_VALUE_LENGTH = 100
MAX_USER_PROPERTIES = 25
MAX_USER_PROPERTY_NAME_LENGTH = 24
MAX_USER_PROPERTY_VALUE_LENGTH = 36
# "The post body must be smaller than 130kB."
MAX_BODY_BYTES = 130_000
ITEMS_PARAM = "items"
CHECK_BODY = {"client_id": "switchyard.check", "events": [{"name": "switchyard_check"}]}


def _name_errors(name, max_length: int) -> list[str]:
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        return [f"Name {name!r} {NAME_RULE}."]
    if len(name) > max_length:
        return [f"Name {name!r} is longer than {max_length} characters."]
    return []


def _value_errors(name: str, value, max_length: int) -> list[str]:
    if isinstance(value, str) and len(value) > max_length:
        return [f"Value of {name!r} is longer than {max_length} characters."]
    return []


def _params_errors(params: dict, *, max_count: int | None) -> list[str]:
    errors = []
    if max_count is not None and len(params) > max_count:
        errors.append(f"At most {max_count} parameters are allowed, got {len(params)}.")
    for name, value in params.items():
        errors += _name_errors(name, MAX_NAME_LENGTH)
        if name == ITEMS_PARAM and isinstance(value, list):
            for item in value:
                if not isinstance(item, dict):
                    errors.append("Each item must be an object.")
                    continue
                errors += _params_errors(item, max_count=None)
        else:
            errors += _value_errors(name, value, MAX_PARAM_VALUE_LENGTH)
    return errors


class EventSerializer(serializers.Serializer):
    name = serializers.RegexField(
        NAME_PATTERN,
        max_length=MAX_NAME_LENGTH,
        error_messages={"invalid": f"Event names {NAME_RULE}."},
    )
    params = serializers.DictField(required=False)

    def validate_params(self, params):
        if errors := _params_errors(params, max_count=MAX_EVENT_PARAMS):
            raise serializers.ValidationError(errors)
        return params


class TrackInput(serializers.Serializer):
    client_id = serializers.CharField(max_length=200)
    user_id = serializers.CharField(max_length=256, required=False)
    timestamp_micros = serializers.IntegerField(min_value=0, required=False)
    user_properties = serializers.DictField(
        required=False, help_text='{"name": {"value": …}}, at most 25.'
    )
    events = serializers.ListField(
        child=EventSerializer(), min_length=1, max_length=MAX_EVENTS, help_text="1 to 25 events."
    )
    validate_only = serializers.BooleanField(
        default=False, help_text="Send to the validation server (/debug/mp/collect) instead."
    )

    def validate_user_properties(self, properties):
        errors = []
        if len(properties) > MAX_USER_PROPERTIES:
            errors.append(f"At most {MAX_USER_PROPERTIES} user properties are allowed.")
        for name, prop in properties.items():
            errors += _name_errors(name, MAX_USER_PROPERTY_NAME_LENGTH)
            if not isinstance(prop, dict) or "value" not in prop:
                errors.append(f"User property {name!r} must be an object with a 'value'.")
            else:
                errors += _value_errors(name, prop["value"], MAX_USER_PROPERTY_VALUE_LENGTH)
        if errors:
            raise serializers.ValidationError(errors)
        return properties

    def validate(self, attrs):
        size = len(json.dumps(_collect_body(attrs)).encode())
        if size >= MAX_BODY_BYTES:
            raise serializers.ValidationError(
                {"events": [f"The request body would be {size} bytes; GA4 takes under 130 kB."]}
            )
        return attrs


def _collect_body(data: dict) -> dict:
    return {key: value for key, value in data.items() if key != "validate_only"}


def _collect_request(ctx: CallContext, data: dict) -> ProviderRequest:
    path = DEBUG_COLLECT_PATH if data.get("validate_only") else COLLECT_PATH
    return ProviderRequest("POST", path, json=_collect_body(data))


def _collect_result(response: ProviderResponse, data: dict) -> dict:
    if not data.get("validate_only"):
        # GA4 reports nothing about the payload on /mp/collect: any 2xx means "received".
        return {"accepted": True, "events": len(data["events"])}
    body = response.json_or_none()
    messages = body.get("validationMessages") if isinstance(body, dict) else None
    if messages:
        described = "; ".join(
            f"{m.get('validationCode')}: {m.get('description')}"
            for m in messages
            if isinstance(m, dict)
        )
        raise Rejected(f"GA4 validation failed: {described or messages}")
    return {"accepted": True, "events": len(data["events"]), "validated": True}


def _check_request(ctx: CallContext, data: dict) -> ProviderRequest:
    return _collect_request(ctx, {**CHECK_BODY, "validate_only": True})


def _check_result(response: ProviderResponse, data: dict) -> dict:
    return _collect_result(response, {**CHECK_BODY, "validate_only": True})


@register
class GA4Provider(BaseProvider):
    key = "ga4"
    name = "Google Analytics 4"
    description = "GA4 Measurement Protocol: send events (EU customers use the EU endpoint)."
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField(
                "measurement_id", secret=False, help_text="G-XXXXXXXXXX (not the stream id)."
            ),
            CredentialField("api_secret", help_text="Measurement Protocol API secret."),
        ],
    }
    default_base_url = "https://www.google-analytics.com"
    regional_base_urls = {"eu": "https://region1.google-analytics.com"}
    # GA4 documents no request rate limit; this default is an assumption, override per integration.
    default_rate_limit = {"rate": 100, "per_seconds": 1}
    operations = {
        "track": Operation(
            "track",
            "Send up to 25 events (POST /mp/collect), limits checked before sending.",
            TrackInput,
            _collect_request,
            _collect_result,
        ),
    }
    check_operation = Operation(
        "check",
        "POST /debug/mp/collect with one test event (not shown in reports).",
        NoInput,
        _check_request,
        _check_result,
    )

    def authenticate(self, ctx: CallContext, request: ProviderRequest) -> None:
        request.params.update(
            {
                "measurement_id": ctx.credentials.get("measurement_id", ""),
                "api_secret": ctx.credentials.get("api_secret", ""),
            }
        )
