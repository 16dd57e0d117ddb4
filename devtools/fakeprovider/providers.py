"""Each fake provider's routes, error shape, 429 shape and rate-limit headers, as documented."""

from __future__ import annotations

import re
import time
import uuid

from devtools.fakeprovider.boards import MiroBoards
from devtools.fakeprovider.oauth import FakeTokens
from devtools.fakeprovider.replies import (
    Reply,
    fake_id,
    json_reply,
    seconds_text,
    status_phrase,
    text_reply,
)
from devtools.fakeprovider.state import Limit
from integrations.constants import (
    HEADER_AUTHORIZATION,
    HEADER_MIRO_RATELIMIT_LIMIT,
    HEADER_MIRO_RATELIMIT_REMAINING,
    HEADER_MIRO_RATELIMIT_RESET,
    HEADER_RETRY_AFTER,
    HEADER_SHOPIFY_ACCESS_TOKEN,
    HEADER_SHOPIFY_CALL_LIMIT,
)

__all__ = ("FAKE_PROVIDERS", "FakeProvider")

GA4_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


class FakeProvider:
    """One provider's routes, error shape and 429 shape."""

    key: str

    def route(self, method: str, path: str, query: dict, headers: dict, body) -> Reply:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Reply:
        return json_reply(status, {"error": message})

    def rate_limited(self, delay: float, limit: Limit) -> Reply:
        return json_reply(
            429, {"error": "Too many requests"}, {HEADER_RETRY_AFTER: seconds_text(delay)}
        )

    def annotate(self, reply: Reply, limit: Limit | None) -> None:
        """Add rate-limit headers the provider sends on every answer."""

    def reset(self) -> None:
        """Forget what earlier requests created (``POST /_reset``)."""


class FakeTrello(FakeProvider):
    key = "trello"
    card_path = re.compile(r"^/1/cards/(?P<id>[0-9A-Za-z]+)$")

    def route(self, method, path, query, headers, body):
        authorised = (query.get("key") and query.get("token")) or headers.get(
            HEADER_AUTHORIZATION.lower(), ""
        ).startswith("OAuth ")
        if not authorised:
            return text_reply(401, "invalid key")
        params = {**query, **(body if isinstance(body, dict) else {})}
        if method == "GET" and path == "/1/members/me":
            return json_reply(200, {"id": "5abbe4b7ddc1b351ef961400", "username": "fakemember"})
        if method == "PUT" and (match := self.card_path.match(path)):
            if not params.get("idList"):
                return text_reply(400, "invalid value for idList")
            card = {
                "id": match["id"],
                "idList": params["idList"],
                "idBoard": "5abbe4b7ddc1b351ef9614bb",
            }
            return json_reply(200, {**card, "name": "Fake card", "closed": False})
        if method == "POST" and path.rstrip("/") == "/1/webhooks":
            webhook = {
                "id": fake_id(),
                "description": params.get("description", ""),
                "idModel": params.get("idModel"),
                "callbackURL": params.get("callbackURL"),
                "active": params.get("active", True),
                "consecutiveFailures": 0,
                "firstConsecutiveFailDate": None,
            }
            return json_reply(200, webhook)
        return text_reply(404, "The requested resource was not found.")

    def error(self, status, message):
        # Trello answers most errors in plain text.
        return text_reply(status, message)

    def rate_limited(self, delay, limit):
        # Documented body, and no Retry-After or rate-limit headers.
        return json_reply(
            429, {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
        )


class FakeMiro(FakeProvider):
    key = "miro"
    item_path = re.compile(r"^/v2/boards/(?P<board>[^/]+)/items/(?P<item>[^/]+)$")
    items_path = re.compile(r"^/v2/boards/(?P<board>[^/]+)/items$")
    sticky_path = re.compile(r"^/v2/boards/(?P<board>[^/]+)/sticky_notes$")
    board_path = re.compile(r"^/v2/boards/(?P<board>[^/]+)$")

    token_path = "/v1/oauth/token"
    # miro.com/oauth/authorize, served under the fake's /miro/ prefix.
    authorize_path = "/oauth/authorize"

    def __init__(self):
        self.boards = MiroBoards()
        self.tokens = FakeTokens()

    def reset(self):
        self.boards.reset()
        self.tokens.reset()

    def route(self, method, path, query, headers, body):
        if method == "GET" and path == self.authorize_path:
            return self.tokens.authorize(query)
        if method == "POST" and path == self.token_path:
            # grant_type and refresh_token may come in the query (Miro's page) or the form body.
            return self.tokens.token({**query, **(body if isinstance(body, dict) else {})})
        authorization = headers.get(HEADER_AUTHORIZATION.lower(), "")
        if not authorization.startswith("Bearer "):
            return self.error(401, "No access token provided")
        if self.tokens.expired(authorization.removeprefix("Bearer ")):
            return self.error(401, "Access token expired")
        board_reply = self._board_route(method, path, query, body)
        if board_reply is not None:
            return board_reply
        if method == "PATCH" and (match := self.item_path.match(path)):
            if not isinstance(body, dict):
                return self.error(400, "Malformed request body")
            stored = self.boards.update(match["board"], match["item"], body)
            if stored is not None:
                return json_reply(200, stored)
            item = {
                "id": match["item"],
                "type": "sticky_note",
                "parent": body.get("parent") or {"id": None},
                "position": body.get("position") or {"x": 0, "y": 0},
            }
            return json_reply(200, item)
        if method == "GET" and (match := self.board_path.match(path)):
            return json_reply(200, {"id": match["board"], "type": "board", "name": "Fake board"})
        return self.error(404, "Not found")

    def _board_route(self, method, path, query, body) -> Reply | None:
        """Listing, creating and deleting items of a board (docs/providers/miro.md)."""
        if method == "GET" and (match := self.items_path.match(path)):
            try:
                limit = int(query.get("limit", 10))
            except (TypeError, ValueError):
                limit = 0
            if not 10 <= limit <= 50:
                return self.error(400, "limit must be between 10 and 50")
            page = self.boards.page(match["board"], limit, query.get("cursor") or None)
            if page is None:
                return self.error(400, "Invalid cursor")
            return json_reply(200, page)
        if method == "POST" and (match := self.sticky_path.match(path)):
            body = body if isinstance(body, dict) else {}
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            position = body.get("position") if isinstance(body.get("position"), dict) else None
            parent = body.get("parent") if isinstance(body.get("parent"), dict) else None
            return json_reply(201, self.boards.create(match["board"], data, position, parent))
        if method == "DELETE" and (match := self.item_path.match(path)):
            if self.boards.delete(match["board"], match["item"]):
                return Reply(204)
            return self.error(404, "Item not found")
        return None

    def error(self, status, message):
        # Miro's exact code strings are unconfirmed; lowerCamel of the status phrase is close.
        words = status_phrase(status).split()
        code = (
            "".join([words[0].lower(), *(w.capitalize() for w in words[1:])]) if words else "error"
        )
        return json_reply(
            status, {"status": status, "code": code, "message": message, "type": "error"}
        )

    def rate_limited(self, delay, limit):
        return json_reply(
            429,
            {
                "status": 429,
                "code": "tooManyRequests",
                "message": "Request rate limit exceed",
                "context": None,
                "type": "error",
            },
        )

    def annotate(self, reply, limit):
        if limit is None:
            return
        used = len(limit.hits)
        reset = int((limit.hits[0] + limit.per_seconds) if limit.hits else time.time()) + 1
        reply.headers.update(
            {
                HEADER_MIRO_RATELIMIT_LIMIT: str(limit.rate),
                HEADER_MIRO_RATELIMIT_REMAINING: str(max(limit.rate - used, 0)),
                HEADER_MIRO_RATELIMIT_RESET: str(reset),
            }
        )


class FakeShopify(FakeProvider):
    key = "shopify"
    order_path = re.compile(r"^/admin/api/[^/]+/orders/(?P<id>\d+)\.json$")
    shop_path = re.compile(r"^/admin/api/[^/]+/shop\.json$")
    token_path = "/admin/oauth/access_token"
    authorize_path = "/admin/oauth/authorize"

    def __init__(self):
        self.tokens = FakeTokens()

    def reset(self):
        self.tokens.reset()

    def route(self, method, path, query, headers, body):
        if method == "GET" and path == self.authorize_path:
            return self.tokens.authorize(query)
        if method == "POST" and path == self.token_path:
            return self.tokens.token(body if isinstance(body, dict) else {})
        token = headers.get(HEADER_SHOPIFY_ACCESS_TOKEN.lower())
        if not token or self.tokens.expired(token):
            return self.error(
                401, "[API] Invalid API key or access token (unrecognized login or wrong password)"
            )
        if method == "PUT" and (match := self.order_path.match(path)):
            order = (body or {}).get("order") if isinstance(body, dict) else None
            if not isinstance(order, dict):
                return json_reply(
                    400, {"errors": {"order": "Required parameter missing or invalid"}}
                )
            return json_reply(
                200, {"order": {"id": int(match["id"]), "tags": order.get("tags", "")}}
            )
        if method == "GET" and self.shop_path.match(path):
            shop = {"id": 548380009, "name": "Fake shop", "myshopify_domain": "fake.myshopify.com"}
            return json_reply(200, {"shop": shop})
        return self.error(404, "Not Found")

    def error(self, status, message):
        return json_reply(status, {"errors": message})

    def rate_limited(self, delay, limit):
        # The community-reported body text, with the leaky bucket full and Retry-After.
        return json_reply(
            429,
            {
                "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
                "resume uninterrupted service."
            },
            {HEADER_RETRY_AFTER: seconds_text(delay)},
        )

    def annotate(self, reply, limit):
        if limit is not None:
            reply.headers[HEADER_SHOPIFY_CALL_LIMIT] = f"{len(limit.hits)}/{limit.rate}"


class FakeGA4(FakeProvider):
    key = "ga4"

    def route(self, method, path, query, headers, body):
        if method != "POST" or path not in ("/mp/collect", "/debug/mp/collect"):
            return text_reply(404, "Not Found")
        if path == "/mp/collect":
            # GA4 accepts anything it can receive; it never reports payload errors here.
            return Reply(204)
        messages = []
        events = body.get("events") if isinstance(body, dict) else None
        for index, event in enumerate(events if isinstance(events, list) else []):
            name = event.get("name") if isinstance(event, dict) else None
            if not isinstance(name, str) or not GA4_NAME.match(name):
                messages.append(
                    {
                        "fieldPath": "events",
                        "description": f"Event at index: [{index}] has invalid name [{name}]. "
                        "Names must start with an alphabetic character.",
                        "validationCode": "NAME_INVALID",
                    }
                )
        return json_reply(200, {"validationMessages": messages})

    def error(self, status, message):
        return text_reply(status, message)

    def rate_limited(self, delay, limit):
        # GA4 documents no rate limit; an undocumented 429 carries only Retry-After.
        return text_reply(429, "Too Many Requests", {HEADER_RETRY_AFTER: seconds_text(delay)})


class FakeSelenium(FakeProvider):
    key = "selenium"
    session_path = re.compile(r"^/session/(?P<id>[A-Za-z0-9-]+)$")

    def route(self, method, path, query, headers, body):
        if method == "GET" and path == "/status":
            node = {
                "id": "fake-node-1",
                "uri": "http://127.0.0.1:5555",
                "maxSessions": 1,
                "osInfo": {"arch": "amd64", "name": "Linux", "version": "6.1"},
                "heartbeatPeriod": 60000,
                "availability": "UP",
                "version": "4.0.0 (fake)",
                "slots": [
                    {
                        "lastStarted": "1970-01-01T00:00:00Z",
                        "session": None,
                        "id": {"hostId": "fake-node-1", "id": "fake-slot-1"},
                        "stereotype": {"browserName": "firefox", "platformName": "LINUX"},
                    }
                ],
            }
            value = {"ready": True, "message": "Selenium Grid ready.", "nodes": [node]}
            return json_reply(200, {"value": value})
        if method == "POST" and path == "/session":
            capabilities = (body or {}).get("capabilities") if isinstance(body, dict) else None
            if not isinstance(capabilities, dict):
                return self._w3c(400, "invalid argument", "Missing capabilities")
            value = {
                "sessionId": str(uuid.uuid4()),
                "capabilities": capabilities.get("alwaysMatch", {}),
            }
            return json_reply(200, {"value": value})
        if method == "DELETE" and self.session_path.match(path):
            return json_reply(200, {"value": None})
        return self._w3c(404, "unknown command", f"Unable to find handler for ({method}) {path}")

    def _w3c(self, status, error, message):
        return json_reply(status, {"value": {"error": error, "message": message, "stacktrace": ""}})

    def error(self, status, message):
        return self._w3c(status, "unknown error", message)

    def rate_limited(self, delay, limit):
        return json_reply(
            429,
            {"value": {"error": "unknown error", "message": "Too many requests", "stacktrace": ""}},
            {HEADER_RETRY_AFTER: seconds_text(delay)},
        )


class FakeHttp(FakeProvider):
    key = "http"

    def route(self, method, path, query, headers, body):
        return json_reply(200, {"ok": True, "method": method, "path": path, "received": body})


FAKE_PROVIDERS = {
    p.key: p
    for p in (FakeTrello(), FakeMiro(), FakeShopify(), FakeGA4(), FakeSelenium(), FakeHttp())
}
