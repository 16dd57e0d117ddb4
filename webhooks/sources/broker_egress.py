"""Connections to a source's broker under the egress policy, made when a consumer connects.

``integrations.egress`` pins the HTTP connections it makes itself; pika and boto3 open their own
sockets. For AMQP the broker's name is resolved here once, every address it resolves to is
judged by the egress policy (public, or listed in SWITCHYARD_EGRESS_ALLOW by host, host:port, IP
or CIDR), and pika is handed the checked address (the name is kept for TLS: SNI and the
certificate check). A DNS answer that changes after the check then has nothing to change.

boto3 offers no public way to choose the address it connects to: its endpoint URL is checked
when the client is built and every request's URL again just before it is sent (``before-send``),
but that connection is resolved again by botocore, not pinned.

A refusal's message (stored in the endpoint's ``source_error``, shown by the API) names neither
the address nor whether the name resolved; the log has both."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import structlog

from integrations import egress

__all__ = ("BrokerAddress", "broker_address", "sqs_request_check")

logger = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True)
class BrokerAddress:
    """Where to connect: the checked ``address``; ``host`` as configured, for TLS."""

    host: str
    port: int
    address: str


def _getaddrinfo(host: str, port: int) -> list:
    """The one place brokers' names are resolved (tests replace it, as egress's own)."""
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)


def _url(host: str, port: int) -> str:
    """An http URL naming ``host:port``, for egress's check (it judges the addresses only)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _allowed(host: str, port: int, address: str) -> bool:
    """The egress policy for one address ``host`` resolved to: public, the host listed by name
    (any address it resolves to), or the address listed (an IP or CIDR entry)."""
    if egress.is_public_address(address):
        return True
    name = host.lower().rstrip(".").strip("[]")
    if any(entry.host == name and entry.port in (None, port) for entry in egress.allow_entries()):
        return True
    try:
        egress.destination_check(_url(address.split("%", 1)[0], port))
    except egress.EgressRefused:
        return False
    return True


def _refused(host: str, port: int, **detail) -> egress.EgressRefused:
    """The refusal (the same words whatever the cause); the cause goes to the log only."""
    logger.warning("sources.broker_refused", host=host, port=port, **detail)
    return egress.EgressRefused(
        f"Broker host '{host}' is refused by the egress policy: it does not resolve, or resolves "
        f"to a non-public address (an operator may list it in {egress.ALLOW_SETTING})."
    )


def broker_address(host: str, port: int) -> BrokerAddress:
    """Resolve ``host`` once and check every address; the first (resolver order) to connect to.
    ``egress.EgressRefused`` otherwise, naming the host only."""
    try:
        infos = _getaddrinfo(host.strip("[]"), port)
    except (socket.gaierror, UnicodeError) as exc:
        raise _refused(host, port, reason="does not resolve", error=str(exc)) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise _refused(host, port, reason="does not resolve")
    for address in addresses:
        if not _allowed(host, port, address):
            raise _refused(host, port, reason="non-public address", address=address)
    return BrokerAddress(host=host, port=port, address=addresses[0])


def sqs_request_check(request, **kwargs) -> None:
    """botocore ``before-send`` handler: every request's URL passes the egress policy first
    (an ``egress.EgressRefused`` stops it before a connection is made)."""
    egress.destination_check(request.url)
