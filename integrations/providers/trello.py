"""Trello REST API v1 (reference/providers.md §1): key + token auth, move a card, create a
webhook, ``X-Trello-Webhook`` (base64 HMAC-SHA1 of body + callback URL with the app secret)."""

import hashlib
import hmac
from collections.abc import Mapping

from django.views.decorators.debug import sensitive_variables
from rest_framework import serializers

from integrations.capabilities import stage_name, stages_of
from integrations.constants import (
    CAPABILITY_WORKFLOW_PROCEED,
    EVENT_TRELLO_CARD_COMMENTED,
    EVENT_TRELLO_CARD_CREATED,
    EVENT_TRELLO_CARD_MOVED,
    EVENT_TRELLO_CARD_UPDATED,
    HEADER_AUTHORIZATION,
    HEADER_TRELLO_WEBHOOK,
)
from integrations.providers.base import BaseProvider
from integrations.providers.config import BaseConfigSerializer, NoInput
from integrations.providers.types import (
    CallContext,
    CapabilityBinding,
    CredentialField,
    CredentialPurpose,
    NormalisedEvent,
    Operation,
    PayloadInvalid,
    ProviderRequest,
    ProviderResponse,
    SignatureInvalid,
)
from integrations.providers.wire import (
    b64_hmac,
    check_secrets,
    headers_lower,
    json_object,
    parse_json_body,
)
from integrations.registry import register

__all__ = ("TrelloProvider",)

AUTH_QUERY = "query"
AUTH_HEADER = "header"
TRELLO_ID_PATTERN = r"^[0-9a-fA-F]{24}$"
MOVE_TRANSLATION_KEY = "action_move_card_from_list_to_list"
# Trello action types we turn into Switchyard events; every other type is ignored.
ACTION_EVENTS = {
    "createCard": EVENT_TRELLO_CARD_CREATED,
    "updateCard": EVENT_TRELLO_CARD_UPDATED,
    "commentCard": EVENT_TRELLO_CARD_COMMENTED,
}


class TrelloConfigSerializer(BaseConfigSerializer):
    auth_mode = serializers.ChoiceField(
        choices=[AUTH_QUERY, AUTH_HEADER],
        required=False,
        help_text="'query' sends key/token as query parameters (documented); 'header' sends an "
        "OAuth Authorization header (widely used, not officially documented).",
    )


class MoveCardInput(serializers.Serializer):
    card_id = serializers.RegexField(r"^[0-9A-Za-z]{1,64}$", help_text="Card id or short link.")
    list_id = serializers.RegexField(TRELLO_ID_PATTERN, help_text="The list to move the card to.")
    pos = serializers.RegexField(
        r"^(top|bottom|\d+(\.\d+)?)$", required=False, help_text="top, bottom or a positive number."
    )


class CreateWebhookInput(serializers.Serializer):
    callback_url = serializers.URLField(help_text="Must answer HEAD and POST with 200.")
    id_model = serializers.RegexField(TRELLO_ID_PATTERN, help_text="Board, list or card id.")
    description = serializers.CharField(max_length=16384, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)


def _move_card_request(ctx: CallContext, data: dict) -> ProviderRequest:
    body = {"idList": data["list_id"]}
    if "pos" in data:
        body["pos"] = data["pos"]
    return ProviderRequest("PUT", f"/1/cards/{data['card_id']}", json=body)


def _move_card_result(response: ProviderResponse, data: dict) -> dict:
    card = json_object(response)
    if not card.get("id") or not card.get("idList"):
        raise PayloadInvalid("Trello answered without the card's id and idList.")
    return {"card_id": card["id"], "list_id": card["idList"], "board_id": card.get("idBoard")}


def _create_webhook_request(ctx: CallContext, data: dict) -> ProviderRequest:
    body = {"callbackURL": data["callback_url"], "idModel": data["id_model"]}
    for field, name in (("description", "description"), ("active", "active")):
        if field in data:
            body[name] = data[field]
    return ProviderRequest("POST", "/1/webhooks/", json=body)


def _create_webhook_result(response: ProviderResponse, data: dict) -> dict:
    webhook = json_object(response)
    if not webhook.get("id"):
        raise PayloadInvalid("Trello answered without the webhook id.")
    return {
        "webhook_id": webhook["id"],
        "id_model": webhook.get("idModel"),
        "active": webhook.get("active"),
    }


def _members_me_request(ctx: CallContext, data: dict) -> ProviderRequest:
    return ProviderRequest("GET", "/1/members/me", params={"fields": "id,username"})


def _members_me_result(response: ProviderResponse, data: dict) -> dict:
    member = json_object(response)
    return {"member_id": member.get("id"), "username": member.get("username")}


def _proceed_input(data: dict, config: Mapping) -> dict:
    moved = {"card_id": data["item"], "list_id": stages_of(config)[data["to"]]}
    if "pos" in data.get("options", {}):
        moved["pos"] = str(data["options"]["pos"])
    return moved


def _proceed_result(result: dict, config: Mapping) -> dict:
    return {"item": result["card_id"], "stage": stage_name(config, result["list_id"])}


@register
class TrelloProvider(BaseProvider):
    key = "trello"
    name = "Trello"
    description = "Trello boards: move cards between lists, receive board webhooks."
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField("api_key", help_text="The Power-Up API key (32 hex characters)."),
            CredentialField("token", help_text="A member token (64 hex characters)."),
        ],
        CredentialPurpose.WEBHOOK_SIGNING: [
            CredentialField(
                "secret", help_text="The app secret (OAuth1.0 secret on the key page)."
            ),
        ],
    }
    default_base_url = "https://api.trello.com"
    # 100 requests per 10 s per token (300 per key): the token limit binds first.
    default_rate_limit = {"rate": 100, "per_seconds": 10}
    shared_rate_limits = {"api_key": {"rate": 300, "per_seconds": 10}}
    # Trello's 429 names no delay; its window is 10 s.
    rate_limited_delay_seconds = 10.0
    config_serializer = TrelloConfigSerializer
    verifies_webhooks = True
    operations = {
        "move_card": Operation(
            "move_card",
            "Move a card to another list (PUT /1/cards/{id} with idList).",
            MoveCardInput,
            _move_card_request,
            _move_card_result,
        ),
        "create_webhook": Operation(
            "create_webhook",
            "Create a webhook on a board, list or card (POST /1/webhooks/).",
            CreateWebhookInput,
            _create_webhook_request,
            _create_webhook_result,
        ),
    }
    capabilities = {
        CAPABILITY_WORKFLOW_PROCEED: CapabilityBinding(
            "move_card", _proceed_input, _proceed_result, {"card_id": "item", "pos": "options"}
        )
    }
    check_operation = Operation(
        "check",
        "GET /1/members/me",
        NoInput,
        _members_me_request,
        _members_me_result,
    )

    def authenticate(self, ctx: CallContext, request: ProviderRequest) -> None:
        key, token = ctx.credentials.get("api_key", ""), ctx.credentials.get("token", "")
        if ctx.config.get("auth_mode") == AUTH_HEADER:
            request.headers[HEADER_AUTHORIZATION] = (
                f'OAuth oauth_consumer_key="{key}", oauth_token="{token}"'
            )
        else:
            request.params.update({"key": key, "token": token})

    @sensitive_variables("secrets", "secret")
    def verify(self, body, headers, secrets, url, *, now=None, tolerance=None) -> int:
        signature = headers_lower(headers).get(HEADER_TRELLO_WEBHOOK.lower())
        if not signature:
            raise SignatureInvalid(f"Missing {HEADER_TRELLO_WEBHOOK} header.")
        signed = body + url.encode()
        return check_secrets(
            secrets,
            lambda secret: hmac.compare_digest(
                b64_hmac(secret, signed, hashlib.sha1).encode(), signature.strip().encode()
            ),
        )

    def event_id(self, body, headers) -> str:
        action = parse_json_body(body).get("action")
        if not isinstance(action, dict) or not action.get("id"):
            raise PayloadInvalid("Trello payload has no action.id.")
        return str(action["id"])

    def normalise(self, body, headers) -> NormalisedEvent | None:
        action = parse_json_body(body).get("action")
        if not isinstance(action, dict):
            raise PayloadInvalid("Trello payload has no action.")
        action_type = action.get("type")
        event_type = ACTION_EVENTS.get(action_type) if isinstance(action_type, str) else None
        if event_type is None:
            return None
        data = action.get("data") or {}
        if not isinstance(data, dict):
            raise PayloadInvalid("Trello action.data is not an object.")
        display = action.get("display")
        event = {
            "action_id": action.get("id"),
            "card": data.get("card"),
            "board": data.get("board"),
            "member_id": action.get("idMemberCreator"),
        }
        moved = "listAfter" in data or (
            isinstance(display, dict) and display.get("translationKey") == MOVE_TRANSLATION_KEY
        )
        if event_type == EVENT_TRELLO_CARD_UPDATED and moved:
            event_type = EVENT_TRELLO_CARD_MOVED
            event.update(from_list=data.get("listBefore"), to_list=data.get("listAfter"))
        elif event_type == EVENT_TRELLO_CARD_COMMENTED:
            event["text"] = data.get("text")
        return NormalisedEvent(type=event_type, occurred_at=action.get("date"), data=event)
