"""A fake provider server speaking the documented shapes of every provider on localhost.

``manage.py fakeprovider --port 9100`` serves it; tests start it in a thread with
``FakeProviderServer.start()``. Each provider lives under ``/<provider key>/`` so an integration's
``base_url`` of ``http://127.0.0.1:9100/<key>`` points a customer at it (DESIGN.md §7a).

Control endpoints: ``POST /_faults``, ``POST /_limits``, ``GET /_journal``, ``POST /_reset``.
HTTP/1.1 keep-alive is on, and every journal entry names its TCP connection, so connection
reuse by the client is observable."""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

from integrations.constants import (
    HEADER_AUTHORIZATION,
    HEADER_MIRO_RATELIMIT_LIMIT,
    HEADER_MIRO_RATELIMIT_REMAINING,
    HEADER_MIRO_RATELIMIT_RESET,
    HEADER_RETRY_AFTER,
    HEADER_SHOPIFY_ACCESS_TOKEN,
    HEADER_SHOPIFY_CALL_LIMIT,
)

__all__ = ("FakeProviderClient", "FakeProviderServer", "FakeProviderState")

logger = logging.getLogger(__name__)

JOURNAL_MAX_ENTRIES = 100_000
# Idle keep-alive connections are closed after this long, so stopped servers release threads.
IDLE_CONNECTION_SECONDS = 30
GA4_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass
class Fault:
    path_prefix: str
    status: int | None = None
    count: int | None = None  # None: every matching request until /_reset
    retry_after: float | None = None
    latency_ms: int = 0
    drop_connection: bool = False
    failure_rate: float = 0  # 0: always; 0 < r < 1: that share of matching requests


@dataclass
class Limit:
    path_prefix: str
    rate: int
    per_seconds: float
    hits: deque = field(default_factory=deque, repr=False)

    def admit(self, now: float) -> float | None:
        """None if the request fits the sliding window, else seconds until a slot frees."""
        while self.hits and self.hits[0] <= now - self.per_seconds:
            self.hits.popleft()
        if len(self.hits) >= self.rate:
            return max(self.hits[0] + self.per_seconds - now, 0.001)
        self.hits.append(now)
        return None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)


def _json(status: int, payload, headers: dict | None = None) -> Reply:
    return Reply(
        status, json.dumps(payload).encode(), {"Content-Type": JSON_TYPE, **(headers or {})}
    )


def _text(status: int, text: str, headers: dict | None = None) -> Reply:
    return Reply(status, text.encode(), {"Content-Type": TEXT_TYPE, **(headers or {})})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _fake_id(length: int = 24) -> str:
    return uuid.uuid4().hex[:length]


class FakeProviderState:
    """Journal, faults and limits; shared by the handler threads behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.journal: deque[dict] = deque(maxlen=JOURNAL_MAX_ENTRIES)
        self.faults: list[Fault] = []
        self.limits: list[Limit] = []
        self._connections = itertools.count(1)
        # Counts resets, so a request held by a latency fault can tell that its test is over.
        self.generation = 0

    def next_connection_id(self) -> int:
        with self.lock:
            return next(self._connections)

    def reset(self) -> None:
        with self.lock:
            self.journal.clear()
            self.faults.clear()
            self.limits.clear()
            self.generation += 1

    def record(self, entry: dict) -> dict:
        with self.lock:
            self.journal.append(entry)
        return entry

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not path.startswith(fault.path_prefix) or fault.count == 0:
                    continue
                if fault.failure_rate and random.random() >= fault.failure_rate:  # noqa: S311
                    return None
                if fault.count is not None:
                    fault.count -= 1
                return fault
        return None

    def check_limit(self, path: str) -> tuple[Limit, float | None] | None:
        with self.lock:
            for limit in self.limits:
                if path.startswith(limit.path_prefix):
                    return limit, limit.admit(time.time())
        return None


# -- provider behaviour ----------------------------------------------------------------------------


class FakeProvider:
    """One provider's routes, error shape and 429 shape."""

    key: str

    def route(self, method: str, path: str, query: dict, headers: dict, body) -> Reply:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Reply:
        return _json(status, {"error": message})

    def rate_limited(self, delay: float, limit: Limit) -> Reply:
        return _json(429, {"error": "Too many requests"}, {HEADER_RETRY_AFTER: _seconds(delay)})

    def annotate(self, reply: Reply, limit: Limit | None) -> None:
        """Add rate-limit headers the provider sends on every answer."""


def _seconds(delay: float) -> str:
    return f"{delay:.3f}".rstrip("0").rstrip(".") or "0"


class FakeTrello(FakeProvider):
    key = "trello"
    card_path = re.compile(r"^/1/cards/(?P<id>[0-9A-Za-z]+)$")

    def route(self, method, path, query, headers, body):
        authorised = (query.get("key") and query.get("token")) or headers.get(
            HEADER_AUTHORIZATION.lower(), ""
        ).startswith("OAuth ")
        if not authorised:
            return _text(401, "invalid key")
        params = {**query, **(body if isinstance(body, dict) else {})}
        if method == "GET" and path == "/1/members/me":
            return _json(200, {"id": "5abbe4b7ddc1b351ef961400", "username": "fakemember"})
        if method == "PUT" and (match := self.card_path.match(path)):
            if not params.get("idList"):
                return _text(400, "invalid value for idList")
            card = {
                "id": match["id"],
                "idList": params["idList"],
                "idBoard": "5abbe4b7ddc1b351ef9614bb",
            }
            return _json(200, {**card, "name": "Fake card", "closed": False})
        if method == "POST" and path.rstrip("/") == "/1/webhooks":
            webhook = {
                "id": _fake_id(),
                "description": params.get("description", ""),
                "idModel": params.get("idModel"),
                "callbackURL": params.get("callbackURL"),
                "active": params.get("active", True),
                "consecutiveFailures": 0,
                "firstConsecutiveFailDate": None,
            }
            return _json(200, webhook)
        return _text(404, "The requested resource was not found.")

    def error(self, status, message):
        # Trello answers most errors in plain text.
        return _text(status, message)

    def rate_limited(self, delay, limit):
        # Documented body, and no Retry-After or rate-limit headers.
        return _json(429, {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"})


class FakeMiro(FakeProvider):
    key = "miro"
    item_path = re.compile(r"^/v2/boards/(?P<board>[^/]+)/items/(?P<item>[^/]+)$")
    board_path = re.compile(r"^/v2/boards/(?P<board>[^/]+)$")

    def route(self, method, path, query, headers, body):
        if not headers.get(HEADER_AUTHORIZATION.lower(), "").startswith("Bearer "):
            return self.error(401, "No access token provided")
        if method == "PATCH" and (match := self.item_path.match(path)):
            if not isinstance(body, dict):
                return self.error(400, "Malformed request body")
            item = {
                "id": match["item"],
                "type": "sticky_note",
                "parent": body.get("parent") or {"id": None},
                "position": body.get("position") or {"x": 0, "y": 0},
            }
            return _json(200, item)
        if method == "GET" and (match := self.board_path.match(path)):
            return _json(200, {"id": match["board"], "type": "board", "name": "Fake board"})
        return self.error(404, "Not found")

    def error(self, status, message):
        # Miro's exact code strings are unconfirmed; lowerCamel of the status phrase is close.
        words = _phrase(status).split()
        code = (
            "".join([words[0].lower(), *(w.capitalize() for w in words[1:])]) if words else "error"
        )
        return _json(status, {"status": status, "code": code, "message": message, "type": "error"})

    def rate_limited(self, delay, limit):
        return _json(
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

    def route(self, method, path, query, headers, body):
        if not headers.get(HEADER_SHOPIFY_ACCESS_TOKEN.lower()):
            return self.error(
                401, "[API] Invalid API key or access token (unrecognized login or wrong password)"
            )
        if method == "PUT" and (match := self.order_path.match(path)):
            order = (body or {}).get("order") if isinstance(body, dict) else None
            if not isinstance(order, dict):
                return _json(400, {"errors": {"order": "Required parameter missing or invalid"}})
            return _json(200, {"order": {"id": int(match["id"]), "tags": order.get("tags", "")}})
        if method == "GET" and self.shop_path.match(path):
            shop = {"id": 548380009, "name": "Fake shop", "myshopify_domain": "fake.myshopify.com"}
            return _json(200, {"shop": shop})
        return self.error(404, "Not Found")

    def error(self, status, message):
        return _json(status, {"errors": message})

    def rate_limited(self, delay, limit):
        # The community-reported body text, with the leaky bucket full and Retry-After.
        return _json(
            429,
            {
                "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
                "resume uninterrupted service."
            },
            {HEADER_RETRY_AFTER: _seconds(delay)},
        )

    def annotate(self, reply, limit):
        if limit is not None:
            reply.headers[HEADER_SHOPIFY_CALL_LIMIT] = f"{len(limit.hits)}/{limit.rate}"


class FakeGA4(FakeProvider):
    key = "ga4"

    def route(self, method, path, query, headers, body):
        if method != "POST" or path not in ("/mp/collect", "/debug/mp/collect"):
            return _text(404, "Not Found")
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
        return _json(200, {"validationMessages": messages})

    def error(self, status, message):
        return _text(status, message)

    def rate_limited(self, delay, limit):
        # GA4 documents no rate limit; an undocumented 429 carries only Retry-After.
        return _text(429, "Too Many Requests", {HEADER_RETRY_AFTER: _seconds(delay)})


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
            return _json(200, {"value": value})
        if method == "POST" and path == "/session":
            capabilities = (body or {}).get("capabilities") if isinstance(body, dict) else None
            if not isinstance(capabilities, dict):
                return self._w3c(400, "invalid argument", "Missing capabilities")
            value = {
                "sessionId": str(uuid.uuid4()),
                "capabilities": capabilities.get("alwaysMatch", {}),
            }
            return _json(200, {"value": value})
        if method == "DELETE" and self.session_path.match(path):
            return _json(200, {"value": None})
        return self._w3c(404, "unknown command", f"Unable to find handler for ({method}) {path}")

    def _w3c(self, status, error, message):
        return _json(status, {"value": {"error": error, "message": message, "stacktrace": ""}})

    def error(self, status, message):
        return self._w3c(status, "unknown error", message)

    def rate_limited(self, delay, limit):
        return _json(
            429,
            {"value": {"error": "unknown error", "message": "Too many requests", "stacktrace": ""}},
            {HEADER_RETRY_AFTER: _seconds(delay)},
        )


class FakeHttp(FakeProvider):
    key = "http"

    def route(self, method, path, query, headers, body):
        return _json(200, {"ok": True, "method": method, "path": path, "received": body})


FAKE_PROVIDERS = {
    p.key: p
    for p in (FakeTrello(), FakeMiro(), FakeShopify(), FakeGA4(), FakeSelenium(), FakeHttp())
}


# -- HTTP plumbing -----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients' connection reuse shows in the journal
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) and every keep-alive request would take that long.
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_SECONDS
    server: FakeProviderServer

    def setup(self):
        super().setup()
        self.connection_id = self.server.state.next_connection_id()

    def log_message(self, format, *args):
        # The request line carries credentials in its query string (Trello): log the path only.
        logger.debug("fakeprovider %s %s", self.command, urlsplit(self.path).path)

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _dispatch(self):
        arrived = time.time()
        parts = urlsplit(self.path)
        raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = {
            k: v[0] if len(v) == 1 else v
            for k, v in parse_qs(parts.query, keep_blank_values=True).items()
        }
        if parts.path.startswith("/_"):
            self._send(self._control(parts.path, query, raw_body))
            return
        entry = self.server.state.record(
            {
                "at": arrived,
                "method": self.command,
                "path": parts.path,
                "query": query,
                "headers": dict(self.headers.items()),
                "body": raw_body.decode("utf-8", errors="replace"),
                "connection": self.connection_id,
                "status": None,
            }
        )
        reply = self._answer(parts.path, query, raw_body)
        if reply is None:  # dropped: the client sees the connection close with no answer
            self.close_connection = True
            return
        entry["status"] = reply.status
        self._send(reply)

    def _answer(self, path: str, query: dict, raw_body: bytes) -> Reply | None:
        state = self.server.state
        key, _, rest = path.lstrip("/").partition("/")
        provider = FAKE_PROVIDERS.get(key)
        if provider is None:
            return _text(404, f"No fake provider '{key}'. Known: {', '.join(FAKE_PROVIDERS)}.")
        generation = state.generation
        fault = state.take_fault(path)
        if fault is not None:
            if fault.latency_ms:
                time.sleep(fault.latency_ms / 1000)
                # Reset while held: its test is over, and it must not count against the
                # limits a later test set, so it is dropped unanswered.
                if state.generation != generation:
                    return None
            if fault.drop_connection:
                return None
            if fault.status is not None:
                reply = (
                    provider.rate_limited(fault.retry_after or 1, Limit(path, 1, 1))
                    if fault.status == 429
                    else provider.error(fault.status, _phrase(fault.status))
                )
                reply.headers.pop(HEADER_RETRY_AFTER, None)
                if fault.retry_after is not None:
                    reply.headers[HEADER_RETRY_AFTER] = _seconds(fault.retry_after)
                return reply
        limited = state.check_limit(path)
        limit = limited[0] if limited else None
        if limited and limited[1] is not None:
            reply = provider.rate_limited(limited[1], limit)
        else:
            try:
                body = json.loads(raw_body) if raw_body else None
            except ValueError:
                body = None
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = provider.route(self.command, "/" + rest, query, headers, body)
        provider.annotate(reply, limit)
        return reply

    def _control(self, path: str, query: dict, raw_body: bytes) -> Reply:
        state = self.server.state
        try:
            data = json.loads(raw_body) if raw_body else {}
        except ValueError:
            return _json(400, {"error": "Body must be JSON."})
        try:
            if path == "/_faults" and self.command == "POST":
                fault = Fault(**data)
                with state.lock:
                    state.faults.append(fault)
                return _json(201, {"fault": asdict(fault)})
            if path == "/_faults" and self.command == "GET":
                with state.lock:
                    return _json(200, {"faults": [asdict(f) for f in state.faults]})
            if path == "/_limits" and self.command == "POST":
                limit = Limit(data["path_prefix"], int(data["rate"]), float(data["per_seconds"]))
                with state.lock:
                    state.limits.insert(0, limit)
                return _json(
                    201, {"limit": {k: v for k, v in asdict(limit).items() if k != "hits"}}
                )
        except (TypeError, KeyError, ValueError) as exc:
            return _json(400, {"error": f"Invalid settings: {exc}"})
        if path == "/_journal" and self.command == "GET":
            prefix = query.get("path_prefix", "")
            with state.lock:
                entries = [dict(e) for e in state.journal if e["path"].startswith(prefix)]
            return _json(200, {"requests": entries})
        if path == "/_reset" and self.command == "POST":
            state.reset()
            return _json(200, {"reset": True})
        return _json(404, {"error": f"No control endpoint {self.command} {path}."})

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)


class FakeProviderServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.state = FakeProviderState()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @classmethod
    def start(cls, host: str = "127.0.0.1", port: int = 0) -> FakeProviderServer:
        """Serve in a background thread (port 0: a free port) until ``stop()``."""
        server = cls(host, port)
        server._thread = threading.Thread(
            target=server.serve_forever, name="fakeprovider", daemon=True
        )
        server._thread.start()
        return server

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class FakeProviderClient:
    """Drives a fake provider server through its control endpoints (in this or another process)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self._session = requests.Session()

    def _call(self, method: str, path: str, payload: dict | None = None, **params) -> dict:
        response = self._session.request(
            method, f"{self.url}{path}", json=payload, params=params or None, timeout=5
        )
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def fault(self, **settings) -> dict:
        """``path_prefix`` plus any of status, count, retry_after, latency_ms, drop_connection,
        failure_rate (DESIGN.md §7a)."""
        return self._call("POST", "/_faults", settings)["fault"]

    def limit(self, **settings) -> dict:
        """``path_prefix``, ``rate``, ``per_seconds``; over it the provider's own 429 answers."""
        return self._call("POST", "/_limits", settings)["limit"]

    def journal(self, path_prefix: str = "") -> list[dict]:
        params = {"path_prefix": path_prefix} if path_prefix else {}
        return self._call("GET", "/_journal", **params)["requests"]

    def close(self) -> None:
        self._session.close()
