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


def _refused(host: str, port: int, **detail) -> egress.EgressRefused:
    """The refusal (the same words whatever the cause); the cause goes to the log only."""
    logger.warning("sources.broker_refused", host=host, port=port, **detail)
    return egress.EgressRefused(
        f"Broker host '{host}' is refused by the egress policy: it does not resolve, or resolves "
        f"to a non-public address (an operator may list it in {egress.ALLOW_SETTING})."
    )


def broker_address(host: str, port: int) -> BrokerAddress:
    """Resolve ``host`` once and check every address (egress's policy); the first, in resolver
    order, to connect to. ``egress.EgressRefused`` otherwise, naming the host only."""
    try:
        addresses = egress.destination_addresses(host, port)
    except egress.EgressRefused as exc:
        raise _refused(host, port, detail=str(exc)) from None
    return BrokerAddress(host=host, port=port, address=addresses[0])


def sqs_request_check(request, **kwargs) -> None:
    """botocore ``before-send`` handler: every request's URL passes the egress policy first
    (an ``egress.EgressRefused`` stops it before a connection is made)."""
    egress.destination_check(request.url)
