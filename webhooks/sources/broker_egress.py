"""Connections to a source's broker under the egress policy, made when a consumer connects.

``integrations.egress`` pins the HTTP connections it makes itself; pika and boto3 open their own
sockets. For AMQP the broker's name is resolved here once, every address it resolves to is
judged by the egress policy (public, or listed in SWITCHYARD_EGRESS_ALLOW by host, host:port, IP
or CIDR), and pika is handed the checked address (the name is kept for TLS: SNI and the
certificate check). A DNS answer that changes after the check then has nothing to change.

boto3 opens no socket of ours: its endpoint URL is checked when the client is built, and then
``SqsSend``, a botocore ``before-send`` handler, sends every signed request through an egress
session of the consumer's own and hands botocore the answer. botocore's own HTTP client never
runs, so SQS connections are pinned and checked as every other outbound call is.

A refusal's message (stored in the endpoint's ``source_error``, shown by the API) names neither
the address nor whether the name resolved; the log has both."""

from __future__ import annotations

from dataclasses import dataclass

import requests
import structlog
from botocore import exceptions as botocore_errors
from botocore.awsrequest import AWSResponse

from integrations import egress

__all__ = (
    "SQS_MAX_ANSWER_BYTES",
    "BrokerAddress",
    "SqsAnswerTooLarge",
    "SqsSend",
    "broker_address",
)

logger = structlog.stdlib.get_logger(__name__)

# The largest SQS answer read. A receive returns at most 10 messages of at most 1 MiB each,
# attributes included (docs/providers/shopify-eventbridge.md); escaped as JSON strings, a body may
# grow up to three times (a two-byte character as \uXXXX), and receipt handles come on top.
SQS_MAX_ANSWER_BYTES = 32 * 1024 * 1024


class SqsAnswerTooLarge(ValueError):
    """An SQS answer past SQS_MAX_ANSWER_BYTES: refused unread beyond the cap."""


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


class _Body:
    """What botocore reads an answer's body from (``AWSResponse.raw``): already read in full."""

    def __init__(self, content: bytes):
        self.content = content

    def stream(self, **kwargs):
        yield self.content


class SqsSend:
    """botocore ``before-send`` handler (registered as ``before-send.sqs``): sends the signed
    request through ``session`` (``egress.session_new``: resolved, checked and pinned per
    connection, no redirects, a deadline, a size cap) and returns botocore's answer, so botocore
    sends nothing itself. A failure to connect or read is raised as botocore's own error, which
    its retry rules know; an ``egress.EgressRefused`` is raised as it is."""

    def __init__(self, session: egress.DeadlineSession, *, timeout: tuple[float, float]):
        self.session = session
        self.timeout = timeout  # (connect, read) seconds; their sum bounds the whole call

    def __call__(self, request, **kwargs) -> AWSResponse:
        prepared = requests.PreparedRequest()
        # botocore's headers as signed, and no others: the session's defaults are not merged.
        prepared.prepare(
            method=request.method, url=request.url, headers=dict(request.headers), data=request.body
        )
        url = request.url
        try:
            response = self.session.send(
                prepared,
                timeout=self.timeout,
                deadline=sum(self.timeout),
                max_bytes=SQS_MAX_ANSWER_BYTES,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise botocore_errors.ConnectTimeoutError(endpoint_url=url, error=exc) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise botocore_errors.ReadTimeoutError(endpoint_url=url, error=exc) from exc
        except requests.exceptions.SSLError as exc:
            raise botocore_errors.SSLError(endpoint_url=url, error=exc) from exc
        except requests.exceptions.ConnectionError as exc:
            raise botocore_errors.EndpointConnectionError(endpoint_url=url, error=exc) from exc
        except requests.exceptions.RequestException as exc:  # cut short or undecodable
            raise botocore_errors.ConnectionClosedError(endpoint_url=url, error=exc) from exc
        if len(response.content) > SQS_MAX_ANSWER_BYTES:
            raise SqsAnswerTooLarge(f"SQS answered more than {SQS_MAX_ANSWER_BYTES} bytes.")
        return AWSResponse(url, response.status_code, response.headers, _Body(response.content))
