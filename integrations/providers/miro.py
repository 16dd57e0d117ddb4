"""Miro REST API v2 (reference/providers.md §2): bearer token, move an item into a frame, credit
rate limits announced in ``X-RateLimit-*`` headers. Miro's REST webhooks were removed, so there
is no inbound side."""

import math
import time
from collections.abc import Mapping

from rest_framework import serializers

from integrations.capabilities import stage_name, stages_of
from integrations.constants import (
    CAPABILITY_WORKFLOW_PROCEED,
    HEADER_AUTHORIZATION,
    HEADER_MIRO_RATELIMIT_RESET,
)
from integrations.providers.base import BaseProvider
from integrations.providers.config import BaseConfigSerializer, NoInput
from integrations.providers.types import (
    CallContext,
    CapabilityBinding,
    CredentialField,
    CredentialPurpose,
    NotConfigured,
    Operation,
    PayloadInvalid,
    ProviderRequest,
    ProviderResponse,
)
from integrations.providers.wire import json_object, retry_after_seconds
from integrations.registry import register

__all__ = ("MiroProvider",)

# A minute of credits: the window Miro's limit is defined over.
CREDIT_WINDOW_SECONDS = 60.0


class MiroConfigSerializer(BaseConfigSerializer):
    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs.get("stages") and not attrs.get("board_id"):
            raise serializers.ValidationError({"board_id": ["Required when stages are mapped."]})
        return attrs


class PositionSerializer(serializers.Serializer):
    x = serializers.FloatField()
    y = serializers.FloatField()


class MoveItemInput(serializers.Serializer):
    board_id = serializers.CharField(max_length=100)
    item_id = serializers.CharField(max_length=100)
    parent_id = serializers.CharField(
        max_length=100, allow_null=True, help_text="Frame id; null attaches the item to the canvas."
    )
    position = PositionSerializer(required=False, help_text="Board centre is (0, 0).")


def _move_item_request(ctx: CallContext, data: dict) -> ProviderRequest:
    body = {"parent": {"id": data["parent_id"]}}
    if "position" in data:
        body["position"] = data["position"]
    path = f"/v2/boards/{data['board_id']}/items/{data['item_id']}"
    return ProviderRequest("PATCH", path, json=body)


def _move_item_result(response: ProviderResponse, data: dict) -> dict:
    item = json_object(response)
    if not item.get("id"):
        raise PayloadInvalid("Miro answered without the item id.")
    parent = item.get("parent") if isinstance(item.get("parent"), dict) else {}
    return {"item_id": item["id"], "parent_id": parent.get("id"), "board_id": data["board_id"]}


def _board_request(ctx: CallContext, data: dict) -> ProviderRequest:
    if not ctx.config.get("board_id"):
        raise NotConfigured("Set config.board_id: the connection check reads that board.")
    return ProviderRequest("GET", f"/v2/boards/{ctx.config['board_id']}")


def _board_result(response: ProviderResponse, data: dict) -> dict:
    board = json_object(response)
    return {"board_id": board.get("id"), "name": board.get("name")}


def _proceed_input(data: dict, config: Mapping) -> dict:
    moved = {
        "board_id": config["board_id"],
        "item_id": data["item"],
        "parent_id": stages_of(config)[data["to"]],
    }
    if isinstance(data.get("options", {}).get("position"), dict):
        moved["position"] = data["options"]["position"]
    return moved


def _proceed_result(result: dict, config: Mapping) -> dict:
    return {"item": result["item_id"], "stage": stage_name(config, result["parent_id"])}


@register
class MiroProvider(BaseProvider):
    key = "miro"
    name = "Miro"
    description = "Miro boards (REST v2): move items between frames."
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField("access_token", help_text="OAuth 2.0 access token (sent as Bearer)."),
        ],
    }
    default_base_url = "https://api.miro.com"
    # 100,000 credits per minute; an item update is Level 2 (100 credits).
    default_rate_limit = {"rate": 1000, "per_seconds": 60}
    rate_limited_delay_seconds = CREDIT_WINDOW_SECONDS
    config_serializer = MiroConfigSerializer
    operations = {
        "move_item": Operation(
            "move_item",
            "Move an item into a frame or to a position (PATCH /v2/boards/{board}/items/{item}).",
            MoveItemInput,
            _move_item_request,
            _move_item_result,
        ),
    }
    capabilities = {
        CAPABILITY_WORKFLOW_PROCEED: CapabilityBinding(
            "move_item",
            _proceed_input,
            _proceed_result,
            {"item_id": "item", "position": "options"},
        )
    }
    check_operation = Operation(
        "check", "GET /v2/boards/{config.board_id}", NoInput, _board_request, _board_result
    )

    def authenticate(self, ctx: CallContext, request: ProviderRequest) -> None:
        request.headers[HEADER_AUTHORIZATION] = f"Bearer {ctx.credentials.get('access_token', '')}"

    def rate_limited_delay(self, response: ProviderResponse, config: Mapping) -> float:
        # Retry-After on a Miro 429 is unconfirmed; X-RateLimit-Reset (epoch seconds) is documented.
        delay = retry_after_seconds(response)
        if delay is None:
            try:
                reset = float(response.header(HEADER_MIRO_RATELIMIT_RESET))
            except (TypeError, ValueError):
                reset = math.nan
            # float() also reads "nan" and "inf", which name no time.
            if not math.isfinite(reset):
                return super().rate_limited_delay(response, config)
            delay = max(reset - time.time(), 0.0)
        return delay
