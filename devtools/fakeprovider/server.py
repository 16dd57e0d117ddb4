"""The fake provider server's HTTP plumbing: one handler thread per connection, keep-alive on."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

from devtools.fakeprovider.providers import FAKE_PROVIDERS
from devtools.fakeprovider.replies import (
    Reply,
    json_reply,
    seconds_text,
    status_phrase,
    text_reply,
)
from devtools.fakeprovider.state import FakeProviderState, Fault, Limit
from integrations.constants import HEADER_RETRY_AFTER

__all__ = ("FakeProviderServer",)

logger = logging.getLogger(__name__)

# Idle keep-alive connections are closed after this long, so stopped servers release threads.
IDLE_CONNECTION_SECONDS = 30


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
            return text_reply(404, f"No fake provider '{key}'. Known: {', '.join(FAKE_PROVIDERS)}.")
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
                    else provider.error(fault.status, status_phrase(fault.status))
                )
                reply.headers.pop(HEADER_RETRY_AFTER, None)
                if fault.retry_after is not None:
                    reply.headers[HEADER_RETRY_AFTER] = seconds_text(fault.retry_after)
                return reply
        limited = state.check_limit(path)
        limit = limited[0] if limited else None
        if limited and limited[1] is not None:
            reply = provider.rate_limited(limited[1], limit)
        else:
            try:
                body = json.loads(raw_body) if raw_body else None
            except ValueError:
                # A form body (OAuth 2.0 token requests, RFC 6749 §6) as a dict of its fields.
                body = dict(parse_qsl(raw_body.decode("utf-8", errors="replace"))) or None
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = provider.route(self.command, "/" + rest, query, headers, body)
        provider.annotate(reply, limit)
        return reply

    def _control(self, path: str, query: dict, raw_body: bytes) -> Reply:
        state = self.server.state
        try:
            data = json.loads(raw_body) if raw_body else {}
        except ValueError:
            return json_reply(400, {"error": "Body must be JSON."})
        try:
            if path == "/_faults" and self.command == "POST":
                fault = Fault(**data)
                with state.lock:
                    state.faults.append(fault)
                return json_reply(201, {"fault": asdict(fault)})
            if path == "/_faults" and self.command == "GET":
                with state.lock:
                    return json_reply(200, {"faults": [asdict(f) for f in state.faults]})
            if path == "/_limits" and self.command == "POST":
                limit = Limit(data["path_prefix"], int(data["rate"]), float(data["per_seconds"]))
                with state.lock:
                    state.limits.insert(0, limit)
                return json_reply(
                    201, {"limit": {k: v for k, v in asdict(limit).items() if k != "hits"}}
                )
        except (TypeError, KeyError, ValueError) as exc:
            return json_reply(400, {"error": f"Invalid settings: {exc}"})
        if path == "/_journal" and self.command == "GET":
            prefix = query.get("path_prefix", "")
            with state.lock:
                entries = [dict(e) for e in state.journal if e["path"].startswith(prefix)]
            return json_reply(200, {"requests": entries})
        if path == "/_reset" and self.command == "POST":
            state.reset()
            for provider in FAKE_PROVIDERS.values():
                provider.reset()
            return json_reply(200, {"reset": True})
        return json_reply(404, {"error": f"No control endpoint {self.command} {path}."})

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
