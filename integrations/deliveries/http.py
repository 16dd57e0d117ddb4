"""Pooled HTTP sessions: one per provider per process, created on first use.

A session per call would open a new TCP (and TLS) connection every time and, under load, run
the machine out of sockets. django-q2 forks its workers, so each worker builds its own pool;
sessions are rebuilt after SWITCHYARD_HTTP_SESSION_MAX_AGE_SECONDS so DNS changes get through.

``requests`` timeouts apply per socket operation: a server dripping one byte every few seconds
never trips the read timeout. ``DeadlineSession`` also holds each call to a total deadline
(SWITCHYARD_ATTEMPT_DEADLINE_SECONDS, from sending to the last body byte) and stops reading past
the largest body anyone accepts.

A ``public_only`` session (outbound webhooks whose subscription does not allow private
destinations) checks the address each new connection actually reached before sending a byte,
so a name that passed the SSRF check and then resolves inside the network (DNS rebinding) is
refused too."""

import ipaddress
import time

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_errors
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = (
    "MAX_RESPONSE_BYTES",
    "USER_AGENT",
    "DeadlineSession",
    "is_public_address",
    "session_for",
)

# The largest response body read from a provider; larger ones are refused unread.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
USER_AGENT = "Switchyard/0.1 (+https://switchyard.dev)"
# A worker process sends one request at a time; the pool keeps a few hosts' connections warm
# (a provider's regional hosts) and never grows past this many per host.
POOL_CONNECTIONS = 4
POOL_MAXSIZE = 10
READ_CHUNK_BYTES = 64 * 1024

_sessions: dict[tuple[str, bool], tuple[float, requests.Session]] = {}


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable: not loopback, private, link-local, reserved
    or multicast (an IPv4-mapped IPv6 address is judged as the IPv4 one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PublicPeerOnly:
    """A connection that refuses, once connected and before sending, a peer that is not a public
    address."""

    def _new_conn(self):
        sock = super()._new_conn()
        address = sock.getpeername()[0]
        if not is_public_address(address):
            sock.close()
            raise urllib3_errors.NewConnectionError(
                self,
                f"{self.host} resolved to {address}, a loopback, private or otherwise "
                "non-public address; not connecting.",
            )
        return sock


class _PublicHTTPConnection(_PublicPeerOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicPeerOnly, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }


class DeadlineSession(requests.Session):
    def send(self, request, **kwargs):
        if kwargs.get("stream"):
            return super().send(request, **kwargs)
        deadline = float(settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS)
        expires = time.monotonic() + deadline
        response = super().send(request, **{**kwargs, "stream": True})
        body = bytearray()
        try:
            while len(body) <= MAX_RESPONSE_BYTES:
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
            response.close()
            raise requests.exceptions.ReadTimeout(exc, request=request) from exc
        except urllib3_errors.ProtocolError as exc:
            response.close()
            raise requests.exceptions.ChunkedEncodingError(exc, request=request) from exc
        except urllib3_errors.DecodeError as exc:
            response.close()
            raise requests.exceptions.ContentDecodingError(exc, request=request) from exc
        except BaseException:
            response.close()
            raise
        # Past the size limit the rest is never read; the caller sees the oversize body and
        # refuses it. The connection is then closed rather than returned half-read.
        response._content = bytes(body)
        response._content_consumed = True
        if len(body) > MAX_RESPONSE_BYTES:
            response.close()
        else:
            response.raw.release_conn()
        return response


def _session(*, public_only: bool) -> requests.Session:
    session = DeadlineSession()
    # Retries belong to the delivery engine (recorded, backed off); never hidden in urllib3.
    adapter = (_PublicOnlyAdapter if public_only else HTTPAdapter)(
        pool_connections=POOL_CONNECTIONS, pool_maxsize=POOL_MAXSIZE, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = False
    return session


def session_for(provider_key: str, *, public_only: bool = False) -> requests.Session:
    """The process's pooled session for ``provider_key``; ``public_only``: its twin that connects
    to public addresses only."""
    now = time.monotonic()
    key = (provider_key, public_only)
    created_at, session = _sessions.get(key, (0.0, None))
    if session is None or now - created_at > settings.SWITCHYARD_HTTP_SESSION_MAX_AGE_SECONDS:
        if session is not None:
            session.close()
        session = _session(public_only=public_only)
        _sessions[key] = (now, session)
    return session
