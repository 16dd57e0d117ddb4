"""Miro REST API v2 (reference/providers.md §2, docs/providers/miro.md): bearer token, move an
item into a frame, credit rate limits announced in ``X-RateLimit-*`` headers. Miro's REST
webhooks were removed, so board changes are found by listing the board's items
(``list_items``, internal: the webhooks app's poller runs it) and come in as the polled-change
bodies that ``event_id`` and ``normalise`` read (``miro.item.created|updated|deleted``)."""

import json
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
    OAUTH_CLIENT_FIELDS,
    OAUTH_REFRESH_FIELDS,
    CallContext,
    CapabilityBinding,
    CredentialField,
    CredentialPurpose,
    NormalisedEvent,
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
# Changes a poll of a board's items can find (docs/providers/miro.md, "What Switchyard makes").
ITEM_CHANGES = ("created", "updated", "deleted")


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


class ListItemsInput(serializers.Serializer):
    board_id = serializers.CharField(max_length=100)
    limit = serializers.IntegerField(min_value=10, max_value=50, default=50)
    cursor = serializers.CharField(max_length=2000, required=False, allow_blank=True)


def _list_items_request(ctx: CallContext, data: dict) -> ProviderRequest:
    params = {"limit": data.get("limit", 50)}
    if data.get("cursor"):
        params["cursor"] = data["cursor"]
    return ProviderRequest("GET", f"/v2/boards/{data['board_id']}/items", params=params)


def _list_items_result(response: ProviderResponse, data: dict) -> dict:
    page = json_object(response)
    items = page.get("data")
    if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("id") for i in items):
        raise PayloadInvalid("Miro answered a page of items without a list of items with ids.")
    cursor = page.get("cursor")
    # No cursor (absent, null or empty) ends the collection.
    return {"items": items, "cursor": cursor if isinstance(cursor, str) and cursor else None}


def polled_change_body(*, change: str, board_id: str, item: dict, detected_at: str) -> bytes:
    """The stored body of one change a poll found: the item exactly as Miro listed it (for a
    deletion, as last listed), what happened to it, and when Switchyard saw it."""
    document = {"change": change, "board_id": board_id, "item": item, "detected_at": detected_at}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _polled_change(body: bytes) -> tuple[str, dict, dict]:
    document = json.loads(body)
    item = document.get("item") if isinstance(document, dict) else None
    change = document.get("change") if isinstance(document, dict) else None
    if change not in ITEM_CHANGES or not isinstance(item, dict) or not item.get("id"):
        raise PayloadInvalid("Not a polled Miro item change.")
    return change, item, document


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
    oauth_token_path = "/v1/oauth/token"
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField("access_token", help_text="OAuth 2.0 access token (sent as Bearer)."),
            *OAUTH_REFRESH_FIELDS,  # docs/providers/miro-oauth.md
        ],
        CredentialPurpose.OAUTH_CLIENT: OAUTH_CLIENT_FIELDS,
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
        "list_items": Operation(
            "list_items",
            "List a board's items, one cursor page (GET /v2/boards/{board}/items).",
            ListItemsInput,
            _list_items_request,
            _list_items_result,
            internal=True,
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

    # -- inbound: changes found by polling ----------------------------------------------------

    def event_id(self, body, headers) -> str:
        """``<item id>@<modifiedAt>``: one event per version of an item, whichever poll (or
        repeated page) finds it; a deletion is ``<item id>@deleted@<last modifiedAt>``."""
        try:
            change, item, _ = _polled_change(body)
        except (ValueError, RecursionError) as exc:
            raise PayloadInvalid(str(exc)) from None
        mark = item.get("modifiedAt") or item.get("createdAt") or ""
        return f"{item['id']}@deleted@{mark}" if change == "deleted" else f"{item['id']}@{mark}"

    def normalise(self, body, headers) -> NormalisedEvent:
        change, item, document = _polled_change(body)
        parent = item.get("parent") if isinstance(item.get("parent"), dict) else {}
        occurred = document.get("detected_at") if change == "deleted" else item.get("modifiedAt")
        return NormalisedEvent(
            type=f"miro.item.{change}",
            occurred_at=occurred,
            data={
                "board_id": document.get("board_id"),
                "item_id": str(item["id"]),
                "item_type": item.get("type"),
                "parent_id": parent.get("id"),
                "created_at": item.get("createdAt"),
                "modified_at": item.get("modifiedAt"),
                "item": item,
            },
        )
