"""The one way out: every outbound HTTP connection (deliveries, integration checks, subscription
sends, Selenium, SQS consumers) goes through a session from ``session_for`` (pooled per provider)
or ``session_new`` (a long-lived client's own).

Policy. A destination is reached when every address its host resolves to is public, when the
host (``host`` or ``host:port``) or the address (an IP or CIDR entry) is listed in
``SWITCHYARD_EGRESS_ALLOW``, or when the caller passes ``allow_private`` (a subscription an admin
marked so). Addresses are judged after resolution, never by spelling: ``0x7f000001``, ``127.1``,
``[::ffff:127.0.0.1]`` and ``localhost`` all come out of ``getaddrinfo`` as loopback.

Pinning. The connection class resolves the host itself, checks every address, and connects to
the checked address; TLS still verifies the certificate against the host name. A refused
destination never gets a ``connect()``, and a DNS answer that changes between a check and the
connection (rebinding) has nothing to change: there is only one answer.

Sessions are pooled per (provider, allow_private) and process (django-q2 forks its workers, so
each builds its own), rebuilt after SWITCHYARD_HTTP_SESSION_MAX_AGE_SECONDS. ``requests``
timeouts apply per socket operation, which a server dripping one byte at a time never trips:
``DeadlineSession`` also holds each call to a total deadline (the attempt's, or the caller's)
from sending to the last body byte (the head through ``egress_deadline``), and stops reading past
the largest body anyone accepts."""

import functools
import ipaddress
import socket
import sys
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_errors
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import allowed_gai_family, create_connection

from config import tracing
from integrations.egress_deadline import call_expires, head_deadline
from integrations.egress_url import UrlRefused, url_split

__all__ = (
    "MAX_RESPONSE_BYTES",
    "USER_AGENT",
    "DeadlineSession",
    "EgressRefused",
    "allow_entries",
    "destination_addresses",
    "destination_check",
    "is_public_address",
    "parse_allow_entry",
    "session_for",
    "session_new",
)

# The largest response body read from a provider; larger ones are refused unread.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
USER_AGENT = "Switchyard/0.1 (+https://switchyard.dev)"
# A worker process sends one request at a time; the pool keeps a few hosts' connections warm
# (a provider's regional hosts) and never grows past this many per host.
POOL_CONNECTIONS = 4
POOL_MAXSIZE = 10
READ_CHUNK_BYTES = 64 * 1024
ALLOW_SETTING = "SWITCHYARD_EGRESS_ALLOW"

# NAT64's well-known prefix carries the IPv4 address in its last 32 bits. The local-use prefix
# 64:ff9b:1::/48 may place it elsewhere (RFC 6052 prefix lengths), so it is non-public outright.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

_sessions: dict[tuple[str, bool], tuple[float, requests.Session]] = {}


class EgressRefused(ValueError):
    """A destination the egress policy refuses; the message names the host and the address.

    A ValueError, not an OSError: urllib3 and requests pass it through unwrapped, so callers
    tell a refusal (terminal) from a failed connection (retryable).

    ``public_message`` is what an API caller is told instead: neither the address a name
    resolved to nor whether it resolved at all, else the check answers DNS questions about
    internal names."""

    public_message = (
        "The destination is refused by the egress policy: its host does not resolve, or "
        f"resolves to a non-public address (an operator may list it in {ALLOW_SETTING})."
    )


@dataclass(frozen=True)
class AllowEntry:
    """One SWITCHYARD_EGRESS_ALLOW entry: a host name or an address range, optionally one port."""

    host: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None


# --- addresses ------------------------------------------------------------------------------


def _getaddrinfo(host: str, port: int | None, family: int = 0) -> list:
    """The one place egress resolves names (tests replace it so nothing asks a DNS server)."""
    return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)


def _ip(address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(str(address).split("%", 1)[0])  # drop an IPv6 scope id


def _inner_ipv4(ip) -> list[ipaddress.IPv4Address]:
    """The IPv4 address(es) an IPv6 address wraps, which is where its packets end up."""
    if ip.version == 4:
        return []
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    if ip.teredo:
        return list(ip.teredo)  # (server, client): both must be public
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _public(ip) -> bool:
    return (
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not (ip.version == 6 and (ip.is_site_local or ip in _NAT64_LOCAL))
    )


def is_public_address(address) -> bool:
    """Whether packets to ``address`` reach the public internet only: not loopback, private,
    link-local, CGNAT, reserved, multicast, nor any of those wrapped in IPv6 (IPv4-mapped,
    IPv4-compatible, NAT64, 6to4, Teredo)."""
    ip = _ip(address)
    return all(_public(candidate) for candidate in (_inner_ipv4(ip) or [ip]))


def _shown(address) -> str:
    ip = _ip(address)
    inner = _inner_ipv4(ip)
    return f"{ip} ({', '.join(map(str, inner))})" if inner else str(ip)


def _kind(address) -> str:
    """What a non-public address is, for messages."""
    ip = _ip(address)
    ip = (_inner_ipv4(ip) or [ip])[0]
    for attribute, name in (
        ("is_unspecified", "an unspecified"),
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local (cloud metadata)"),
        ("is_multicast", "a multicast"),
        ("is_private", "a private"),
    ):
        if getattr(ip, attribute):
            return name
    if ip in ipaddress.IPv4Network("100.64.0.0/10"):
        return "a shared (CGNAT)"
    return "a reserved"


# --- the allow list -------------------------------------------------------------------------


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"'{text}' is not a port")
    return int(text)


def parse_allow_entry(entry: str) -> AllowEntry:
    """``host``, ``host:port``, ``[v6]:port``, an IP address or a CIDR range; ValueError if not."""
    text = entry.strip().lower()
    if "/" in text:
        return AllowEntry(network=ipaddress.ip_network(text, strict=False))
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"'{entry}' is not host, host:port or a CIDR range")
            port = _port(rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text)
    try:
        return AllowEntry(network=ipaddress.ip_network(_ip(host)), port=port)
    except ValueError:
        pass
    host = host.rstrip(".")
    if not host or not all(
        label.replace("-", "").replace("_", "").isalnum() for label in host.split(".")
    ):
        raise ValueError(f"'{entry}' is not host, host:port or a CIDR range")
    return AllowEntry(host=host, port=port)


@functools.lru_cache(maxsize=8)
def _parsed(entries: tuple[str, ...]) -> tuple[AllowEntry, ...]:
    parsed = []
    for entry in entries:
        try:
            parsed.append(parse_allow_entry(entry))
        except ValueError:
            continue  # a malformed entry allows nothing; the system check reports it
    return tuple(parsed)


def allow_entries() -> tuple[AllowEntry, ...]:
    """SWITCHYARD_EGRESS_ALLOW, read now (so ``override_settings`` applies)."""
    entries = getattr(settings, ALLOW_SETTING, None) or ()
    if isinstance(entries, str):
        entries = entries.split(",")
    return _parsed(tuple(entry.strip() for entry in entries if entry.strip()))


def _listed(host: str, port: int, address: str) -> bool:
    name = host.lower().rstrip(".").strip("[]")
    ip = _ip(address)
    candidates = [ip, ip.ipv4_mapped] if ip.version == 6 and ip.ipv4_mapped else [ip]
    for entry in allow_entries():
        if entry.port not in (None, port):
            continue
        if entry.host == name:
            return True
        if entry.network and any(c in entry.network for c in candidates):
            return True
    return False


def _check(host: str, port: int, addresses, *, allow_private: bool) -> None:
    """Raise ``EgressRefused`` unless every address ``host`` resolved to may be reached."""
    if allow_private:
        return
    for address in addresses:
        if not (is_public_address(address) or _listed(host, port, address)):
            raise EgressRefused(
                f"Host '{host}' resolves to {_shown(address)}, {_kind(address)} address "
                f"(non-public); refused. Add it to {ALLOW_SETTING} (host, host:port or CIDR) "
                "to reach it."
            )


def _resolve(host: str, port: int, family: int = 0) -> list:
    try:
        infos = _getaddrinfo(host.strip("[]"), port, family)
    except (socket.gaierror, UnicodeError):
        raise EgressRefused(f"Host '{host}' does not resolve.") from None
    if not infos:
        raise EgressRefused(f"Host '{host}' does not resolve.")
    return infos


def destination_addresses(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, each one checked by the policy, in the resolver's
    order: for a client that opens its own socket (a broker's) and must connect to a checked
    address. ``EgressRefused`` unless every one may be reached."""
    addresses = list(dict.fromkeys(str(info[4][0]) for info in _resolve(host, port)))
    _check(host, port, addresses, allow_private=False)
    return addresses


def destination_check(url: str, *, allow_private: bool = False) -> None:
    """Raise ``EgressRefused`` unless ``url`` is an http(s) URL the policy lets us reach now
    (configuration time, and again before a send; the connection checks once more)."""
    try:
        parts = url_split(url)
    except UrlRefused as exc:
        raise EgressRefused(str(exc)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused("Enter an http(s) URL with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EgressRefused("Enter a URL with a valid port.") from None
    infos = _resolve(parts.hostname, port)
    _check(parts.hostname, port, [info[4][0] for info in infos], allow_private=allow_private)


# --- pinned connections ---------------------------------------------------------------------


class _PinnedConnection:
    """Resolves, checks, then connects to the checked address itself (never by name again)."""

    allow_private = False

    def _new_conn(self) -> socket.socket:
        try:
            infos = _resolve(self._dns_host, self.port, allowed_gai_family())
        except EgressRefused as exc:
            raise urllib3_errors.NameResolutionError(
                self.host, self, socket.gaierror(str(exc))
            ) from None
        addresses = [info[4][0] for info in infos]
        _check(self.host, self.port, addresses, allow_private=self.allow_private)
        error: Exception | None = None
        for address in dict.fromkeys(addresses):  # in resolver order, each once
            try:
                sock = create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                error = urllib3_errors.ConnectTimeoutError(
                    self, f"Connection to {self.host} ({address}) timed out."
                )
                error.__cause__ = exc
            except OSError as exc:
                error = urllib3_errors.NewConnectionError(
                    self, f"Failed to establish a new connection to {address}: {exc}"
                )
            else:
                sys.audit("http.client.connect", self, self.host, self.port)
                return sock
        raise error

    def getresponse(self):
        # The head is read under per-receive timeouts only: held to the call's deadline here.
        with head_deadline(self.sock):
            return super().getresponse()


def _pool_classes(allow_private: bool) -> dict[str, type]:
    """urllib3 pool classes (by scheme) whose connections are pinned, with ``allow_private``."""
    classes = {}
    for scheme, pool, connection in (
        ("http", HTTPConnectionPool, HTTPConnection),
        ("https", HTTPSConnectionPool, HTTPSConnection),
    ):
        pinned = type(
            f"Pinned{connection.__name__}",
            (_PinnedConnection, connection),
            {"allow_private": allow_private},
        )
        classes[scheme] = type(f"{pinned.__name__}Pool", (pool,), {"ConnectionCls": pinned})
    return classes


_POOL_CLASSES = {False: _pool_classes(False), True: _pool_classes(True)}


class _EgressAdapter(HTTPAdapter):
    def __init__(self, *, allow_private: bool, **kwargs):
        self.allow_private = allow_private  # before super(): it builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES[self.allow_private])


# --- sessions -------------------------------------------------------------------------------


class DeadlineSession(requests.Session):
    """Never follows redirects; holds a call to ``deadline`` seconds (default: the attempt
    deadline) and stops reading a body once it is past ``max_bytes`` (default MAX_RESPONSE_BYTES),
    a 3xx's too."""

    provider_key = ""  # set by session_for; named on the call's span

    def get_redirect_target(self, response):
        # None: a 3xx is an answer. requests otherwise reads a 3xx's whole body to prepare the
        # next hop (``Response.next``) even when redirects are off, past the size cap.
        return None

    def send(
        self,
        request,
        *,
        deadline: float | None = None,
        max_bytes: int = MAX_RESPONSE_BYTES,
        **kwargs,
    ):
        # The client span's context goes out as ``traceparent`` (only while tracing is on).
        with tracing.client_span(request, provider=self.provider_key) as current:
            response = self._send(request, deadline=deadline, max_bytes=max_bytes, **kwargs)
            tracing.http_status(current, response.status_code)
        return response

    def _send(self, request, *, deadline: float | None, max_bytes: int, **kwargs):
        kwargs["allow_redirects"] = False  # a redirect is an answer, never a second request
        # No streaming past the deadline and the cap: ``stream`` is always this read's own.
        kwargs.pop("stream", None)
        if deadline is None:
            deadline = settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS
        deadline = float(deadline)
        expires = time.monotonic() + deadline
        token = call_expires.set(expires)
        try:
            response = super().send(request, **{**kwargs, "stream": True})
        except requests.exceptions.ReadTimeout as exc:
            if time.monotonic() < expires:
                raise
            # The deadline cut the head (urllib3 words it as the read timeout): say which.
            raise requests.exceptions.ReadTimeout(
                f"Response not complete within the {deadline:g} s deadline.", request=request
            ) from exc
        finally:
            call_expires.reset(token)
        try:
            body = self._read(response, request, expires, deadline, max_bytes)
        except BaseException:
            response.close()
            raise
        # Past the size limit the rest is never read; the caller sees the oversize body and
        # refuses it. The connection is then closed rather than returned half-read (the raw
        # response's close: requests' own only releases a response it takes as consumed).
        if len(body) > max_bytes:
            response.raw.close()
        else:
            response.raw.release_conn()
        response._content = bytes(body)
        response._content_consumed = True
        return response

    @staticmethod
    def _read(response, request, expires: float, deadline: float, max_bytes: int) -> bytearray:
        body = bytearray()
        try:
            while len(body) <= max_bytes:
                remaining = expires - time.monotonic()
                if remaining <= 0:
                    raise requests.exceptions.ReadTimeout(
                        f"Response not complete within the {deadline:g} s deadline.",
                        request=request,
                    )
                # Each blocking read may only wait for what is left of the deadline.
                sock = getattr(response.raw.connection, "sock", None)
                if sock is not None:
                    sock.settimeout(min(remaining, sock.gettimeout() or remaining))
                # read1: whatever one receive brings, so a drip cannot hold us in one call.
                chunk = response.raw.read1(READ_CHUNK_BYTES, decode_content=True)
                if not chunk:
                    break
                body += chunk
        except urllib3_errors.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc, request=request) from exc
        except urllib3_errors.ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc, request=request) from exc
        except urllib3_errors.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc, request=request) from exc
        return body


def session_new(name: str) -> DeadlineSession:
    """A session of the caller's own, neither pooled nor rebuilt, for public destinations: a
    long-lived client in a thread of its own (one SQS consumer) closes it when it is done, and no
    other thread's rebuild closes it under a request. ``name`` is what its spans call it."""
    session = _session(allow_private=False)
    session.provider_key = name
    return session


def _session(*, allow_private: bool) -> DeadlineSession:
    session = DeadlineSession()
    # Retries belong to the delivery engine (recorded, backed off); never hidden in urllib3.
    adapter = _EgressAdapter(
        allow_private=allow_private,
        pool_connections=POOL_CONNECTIONS,
        pool_maxsize=POOL_MAXSIZE,
        max_retries=0,
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # HTTP(S)_PROXY, NO_PROXY and .netrc are ignored: a proxy would make the pinned address
    # the proxy's, and the environment is not where destinations are decided.
    session.trust_env = False
    return session


def session_for(provider_key: str, *, allow_private: bool = False) -> requests.Session:
    """The process's pooled session for ``provider_key``; ``allow_private``: its twin that may
    reach non-public addresses (only for a subscription an admin allowed so)."""
    now = time.monotonic()
    key = (provider_key, allow_private)
    created_at, session = _sessions.get(key, (0.0, None))
    if session is None or now - created_at > settings.SWITCHYARD_HTTP_SESSION_MAX_AGE_SECONDS:
        if session is not None:
            session.close()
        session = _session(allow_private=allow_private)
        session.provider_key = provider_key
        _sessions[key] = (now, session)
    return session
