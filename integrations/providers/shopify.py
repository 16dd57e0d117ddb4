"""Shopify Admin REST API and HTTPS webhooks (reference/providers.md §4):
``X-Shopify-Access-Token``, leaky-bucket limits (``X-Shopify-Shop-Api-Call-Limit``, 429 with
``Retry-After``), inbound ``X-Shopify-Hmac-Sha256`` over the raw body."""

import dataclasses
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from django.views.decorators.debug import sensitive_variables
from rest_framework import serializers

from integrations.constants import (
    HEADER_SHOPIFY_ACCESS_TOKEN,
    HEADER_SHOPIFY_CALL_LIMIT,
    HEADER_SHOPIFY_EVENT_ID,
    HEADER_SHOPIFY_HMAC,
    HEADER_SHOPIFY_TOPIC,
    HEADER_SHOPIFY_TRIGGERED_AT,
    HEADER_SHOPIFY_WEBHOOK_ID,
)
from integrations.providers.base import BaseProvider
from integrations.providers.config import BaseConfigSerializer, NoInput
from integrations.providers.types import (
    OAUTH_CLIENT_FIELDS,
    OAUTH_REFRESH_FIELDS,
    CallContext,
    CredentialField,
    CredentialPurpose,
    Interpretation,
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

__all__ = ("DEFAULT_API_VERSION", "ShopifyProvider")

DEFAULT_API_VERSION = "2025-01"
EVENT_PREFIX = "shopify."


class ShopifyConfigSerializer(BaseConfigSerializer):
    shop = serializers.RegexField(
        r"^[a-z0-9][a-z0-9-]*$",
        required=False,
        help_text="The shop's myshopify.com subdomain; the base URL is https://<shop>.myshopify.com.",
    )
    api_version = serializers.RegexField(
        r"^\d{4}-\d{2}$",
        required=False,
        help_text=f"Admin API version (default {DEFAULT_API_VERSION}).",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if not attrs.get("shop") and not attrs.get("base_url"):
            raise serializers.ValidationError({"shop": ["Set the shop (or a base_url)."]})
        return attrs


class SetOrderTagsInput(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1)
    tags = serializers.ListField(
        child=serializers.RegexField(r"^[^,]{1,255}$", help_text="A tag, without commas."),
        allow_empty=True,
        max_length=250,
        help_text="The order's complete tag list (replaces the current tags).",
    )


def _admin_path(ctx: CallContext, resource: str) -> str:
    return f"/admin/api/{ctx.config.get('api_version') or DEFAULT_API_VERSION}/{resource}.json"


def _set_order_tags_request(ctx: CallContext, data: dict) -> ProviderRequest:
    order = {"id": data["order_id"], "tags": ", ".join(data["tags"])}
    return ProviderRequest(
        "PUT", _admin_path(ctx, f"orders/{data['order_id']}"), json={"order": order}
    )


def _set_order_tags_result(response: ProviderResponse, data: dict) -> dict:
    order = json_object(response, key="order")
    tags = order.get("tags") or ""
    return {"order_id": order.get("id"), "tags": [t.strip() for t in tags.split(",") if t.strip()]}


def _shop_request(ctx: CallContext, data: dict) -> ProviderRequest:
    return ProviderRequest("GET", _admin_path(ctx, "shop"))


def _shop_result(response: ProviderResponse, data: dict) -> dict:
    shop = json_object(response, key="shop")
    return {
        "shop_id": shop.get("id"),
        "name": shop.get("name"),
        "domain": shop.get("myshopify_domain"),
    }


# Share of a shop's REST bucket left free for bursts (other apps on the shop, retries).
CALL_LIMIT_HEADROOM = 0.25


@register
class ShopifyProvider(BaseProvider):
    key = "shopify"
    name = "Shopify"
    description = "Shopify Admin API writes and HTTPS webhooks."
    oauth_token_path = "/admin/oauth/access_token"
    credential_fields = {
        CredentialPurpose.API: [
            CredentialField("access_token", help_text="Admin API access token."),
            *OAUTH_REFRESH_FIELDS,  # docs/providers/shopify-oauth.md
        ],
        CredentialPurpose.OAUTH_CLIENT: OAUTH_CLIENT_FIELDS,
        CredentialPurpose.WEBHOOK_SIGNING: [
            CredentialField("secret", help_text="The app's client secret (signs webhooks)."),
        ],
    }
    # Standard plans: a 40-request bucket leaking 2 requests per second.
    default_rate_limit = {"rate": 2, "per_seconds": 1}
    # A 429 normally carries Retry-After; without it one leak interval is enough.
    rate_limited_delay_seconds = 1.0
    requires_integration = True
    config_serializer = ShopifyConfigSerializer
    secret_headers = (HEADER_SHOPIFY_ACCESS_TOKEN,)
    # Webhook headers of reference/providers.md §4.1 other than the HMAC.
    inbound_headers = (
        *BaseProvider.inbound_headers,
        HEADER_SHOPIFY_TOPIC,
        HEADER_SHOPIFY_EVENT_ID,
        HEADER_SHOPIFY_WEBHOOK_ID,
        HEADER_SHOPIFY_TRIGGERED_AT,
        "X-Shopify-Shop-Domain",
        "X-Shopify-API-Version",
        "X-Shopify-Sub-Topic",
        "X-Shopify-Name",
    )
    verifies_webhooks = True
    operations = {
        "set_order_tags": Operation(
            "set_order_tags",
            "Replace an order's tags (PUT /admin/api/{version}/orders/{id}.json).",
            SetOrderTagsInput,
            _set_order_tags_request,
            _set_order_tags_result,
        ),
    }
    check_operation = Operation(
        "check", "GET /admin/api/{version}/shop.json", NoInput, _shop_request, _shop_result
    )

    def base_url(self, *, config: Mapping, region: str | None) -> str | None:
        if config.get("base_url"):
            return config["base_url"].rstrip("/")
        return f"https://{config['shop']}.myshopify.com" if config.get("shop") else None

    def own_hosts(self, config: Mapping) -> frozenset[str]:
        # The shop's own myshopify.com host, never a base_url override.
        return frozenset({f"{config['shop']}.myshopify.com"} if config.get("shop") else ())

    def bucket_scope(self, config: Mapping) -> str | None:
        # A bucket per app and shop (docs/providers/shopify-oauth.md): every credential of the
        # app on one shop fills it. The limits key it per customer too, so a tenant naming
        # another's shop cannot pace that tenant's sends.
        base = self.base_url(config=config, region=None)
        if not base:
            return None
        parts = urlsplit(base)
        # Host, port and path only: never user information a base_url might carry.
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.hostname or ''}{port}{parts.path}".lower().rstrip("/")

    def authenticate(self, ctx: CallContext, request: ProviderRequest) -> None:
        request.headers[HEADER_SHOPIFY_ACCESS_TOKEN] = ctx.credentials.get("access_token", "")

    def pace_seconds(self, headers: Mapping[str, str], leak_per_second: float) -> float:
        # X-Shopify-Shop-Api-Call-Limit "used/size" (reference/providers.md, Shopify): past
        # (1 - headroom) of the bucket, wait until it has leaked back below that mark.
        value = next(
            (v for k, v in headers.items() if k.lower() == HEADER_SHOPIFY_CALL_LIMIT.lower()), ""
        )
        used, _, size = str(value).partition("/")
        try:
            used, size = int(used), int(size)
        except ValueError:
            return 0.0
        over = used - size * (1 - CALL_LIMIT_HEADROOM)
        return over / leak_per_second if over > 0 and leak_per_second > 0 else 0.0

    def classify_error(self, response: ProviderResponse, config: Mapping) -> Interpretation:
        interpretation = super().classify_error(response, config)
        call_limit = response.header(HEADER_SHOPIFY_CALL_LIMIT)
        if response.status == 429 and call_limit:
            error = f"{interpretation.error} (API call limit {call_limit})"
            return dataclasses.replace(interpretation, error=error)
        return interpretation

    @sensitive_variables("secrets", "secret")
    def verify(self, body, headers, secrets, url, *, now=None, tolerance=None) -> int:
        signature = headers_lower(headers).get(HEADER_SHOPIFY_HMAC.lower())
        if not signature:
            raise SignatureInvalid(f"Missing {HEADER_SHOPIFY_HMAC} header.")
        return check_secrets(
            secrets,
            lambda secret: hmac.compare_digest(
                b64_hmac(secret, body, hashlib.sha256).encode(), signature.strip().encode()
            ),
        )

    def event_id(self, body, headers) -> str:
        lowered = headers_lower(headers)
        # Event-Id identifies the event across subscriptions; Webhook-Id one delivery's retries.
        event_id = lowered.get(HEADER_SHOPIFY_EVENT_ID.lower()) or lowered.get(
            HEADER_SHOPIFY_WEBHOOK_ID.lower()
        )
        if not event_id:
            raise PayloadInvalid("Shopify delivery has neither an event id nor a webhook id.")
        return event_id

    def normalise(self, body, headers) -> NormalisedEvent | None:
        lowered = headers_lower(headers)
        topic = lowered.get(HEADER_SHOPIFY_TOPIC.lower())
        if not topic:
            raise PayloadInvalid(f"Missing {HEADER_SHOPIFY_TOPIC} header.")
        return NormalisedEvent(
            type=EVENT_PREFIX + topic.strip().replace("/", "."),
            occurred_at=lowered.get(HEADER_SHOPIFY_TRIGGERED_AT.lower()),
            data=parse_json_body(body),
        )
