"""Brokers are reached only under the egress policy: a broker whose name resolves to a refused
address gets no connection (at consume time, and in the admin and API when configured), an
allowed one is connected to at the very address that was checked (AMQP), and every SQS request
goes out through egress's pinned session, never botocore's own. A refusal names the address in
the log only: what the API shows (source_error) tells neither the address nor whether the name
resolved."""

import json
import logging
import socket
import threading
import time

import pika
import pytest
import requests
from botocore import exceptions as botocore_errors
from botocore.awsrequest import AWSRequest

from config.shutdown import StopRequest
from integrations import egress
from webhooks.models import InboundEvent, WebhookEndpoint
from webhooks.sources import amqp as amqp_module
from webhooks.sources import broker_egress, runner
from webhooks.sources.amqp import AmqpConsumer
from webhooks.sources.sqs import SqsConsumer

from .conftest import eventbridge_event

pytestmark = pytest.mark.django_db(transaction=True)


def _resolves(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Broker names resolve to these addresses (in turn, one list per lookup); returns the
    names looked up."""
    asked = []

    real = egress._getaddrinfo

    def resolve(host, port, family=0):
        asked.append(host)
        if host not in answers:
            return real(host, port, family)
        address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(egress, "_getaddrinfo", resolve)
    return asked


def _connections(monkeypatch) -> list:
    """The parameters of every pika connection opened (and opened for real)."""
    opened, real = [], pika.BlockingConnection

    def connect(parameters):
        opened.append(parameters)
        return real(parameters)

    monkeypatch.setattr(amqp_module.pika, "BlockingConnection", connect)
    return opened


def _amqp_url(endpoint: WebhookEndpoint, url: str) -> None:
    # As if configured so: the create checks ran with egress's test resolver.
    endpoint.source_config = {**endpoint.source_config, "url": url}
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(source_config=endpoint.source_config)


def _logged(caplog) -> str:
    """Every log record's fields (structlog hands the standard library its event dict)."""
    return "\n".join(str(record.msg) for record in caplog.records)


def test_a_broker_name_resolving_to_a_refused_address_gets_no_connection(
    amqp_endpoint, monkeypatch, settings, caplog
):
    endpoint, _ = amqp_endpoint()
    _amqp_url(endpoint, "amqp://rabbit.internal.test:5672/")
    _resolves(monkeypatch, {"rabbit.internal.test": ["10.20.30.40"]})
    opened = _connections(monkeypatch)
    consumer = AmqpConsumer(endpoint)
    caplog.set_level(logging.INFO)
    with pytest.raises(egress.EgressRefused, match=r"rabbit\.internal\.test.*EGRESS_ALLOW") as exc:
        consumer.receive_once()
    assert opened == []
    assert "10.20.30.40" not in str(exc.value)
    assert "10.20.30.40" in _logged(caplog)  # the operator still learns why


def test_a_name_that_does_not_resolve_reads_as_one_resolving_inward(monkeypatch):
    """Else the refusal tells a caller which internal names exist."""
    _resolves(monkeypatch, {"rabbit.internal.test": ["10.20.30.40"]})

    def refusal(host):
        with pytest.raises(egress.EgressRefused) as exc:
            broker_egress.broker_address(host, 5672)
        return str(exc.value).replace(host, "HOST")

    assert refusal("rabbit.internal.test") == refusal("nx.invalid")


def test_a_consume_time_refusal_in_source_error_names_no_address(
    sqs, sqs_endpoint, settings, caplog
):
    endpoint = sqs_endpoint()
    settings.SWITCHYARD_EGRESS_ALLOW = []  # moto's server is on loopback: now refused
    caplog.set_level(logging.INFO)
    stop = StopRequest()
    thread = threading.Thread(target=runner._consume_endpoint, args=(endpoint.pk, "sqs", stop))
    thread.start()
    try:
        expires = time.monotonic() + 20
        while time.monotonic() < expires:
            endpoint.refresh_from_db()
            if endpoint.source_error:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert endpoint.source_error == f"EgressRefused: {egress.EgressRefused.public_message}"
    assert "127.0.0.1" in _logged(caplog) and "loopback" in _logged(caplog)


def test_an_allowed_broker_is_connected_at_the_checked_address(
    rabbit, amqp_endpoint, monkeypatch, settings
):
    endpoint, queue = amqp_endpoint()
    _amqp_url(endpoint, "amqp://rabbit.internal.test:5672/")
    settings.SWITCHYARD_EGRESS_ALLOW = ["rabbit.internal.test:5672"]  # listed by name
    # A second lookup would answer a refused address (DNS rebinding): there is none.
    asked = _resolves(monkeypatch, {"rabbit.internal.test": ["127.0.0.1", "10.20.30.40"]})
    opened = _connections(monkeypatch)
    rabbit.basic_publish(
        exchange="",
        routing_key=queue,
        body=json.dumps({"id": 1}).encode(),
        properties=pika.BasicProperties(
            headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Event-Id": "evt-pinned"}
        ),
    )
    consumer = AmqpConsumer(endpoint)
    try:
        assert consumer.receive_once() == (1, 1)
    finally:
        consumer.close()
    assert asked == ["rabbit.internal.test"]
    assert [parameters.host for parameters in opened] == ["127.0.0.1"]
    assert InboundEvent.objects.filter(endpoint=endpoint, external_id="evt-pinned").exists()


def test_a_name_listed_on_another_port_is_refused(amqp_endpoint, monkeypatch, settings):
    endpoint, _ = amqp_endpoint()
    _amqp_url(endpoint, "amqp://rabbit.internal.test:5672/")
    settings.SWITCHYARD_EGRESS_ALLOW = ["rabbit.internal.test:5671"]
    _resolves(monkeypatch, {"rabbit.internal.test": ["127.0.0.1"]})
    with pytest.raises(egress.EgressRefused, match=r"rabbit\.internal\.test"):
        AmqpConsumer(endpoint)._parameters()


def test_tls_names_the_configured_host_while_connecting_to_the_checked_address(
    amqp_endpoint, monkeypatch, settings
):
    endpoint, _ = amqp_endpoint()
    _amqp_url(endpoint, "amqps://rabbit.internal.test/")
    settings.SWITCHYARD_EGRESS_ALLOW = ["10.20.30.0/24"]  # listed by range
    _resolves(monkeypatch, {"rabbit.internal.test": ["10.20.30.40"]})
    parameters = AmqpConsumer(endpoint)._parameters()
    assert (parameters.host, parameters.port) == ("10.20.30.40", 5671)
    assert parameters.ssl_options.server_hostname == "rabbit.internal.test"


def test_every_address_of_the_name_must_pass(amqp_endpoint, monkeypatch, settings, caplog):
    endpoint, _ = amqp_endpoint()
    _amqp_url(endpoint, "amqp://rabbit.internal.test:5672/")

    def two_answers(host, port, family=0):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port)),
        ]

    monkeypatch.setattr(egress, "_getaddrinfo", two_answers)
    caplog.set_level(logging.INFO)
    with pytest.raises(egress.EgressRefused):
        AmqpConsumer(endpoint)._parameters()
    assert "169.254.169.254" in _logged(caplog)


def test_an_sqs_endpoint_refused_now_gets_no_request(sqs, sqs_endpoint, settings):
    endpoint = sqs_endpoint()
    sqs.send_message(
        QueueUrl=endpoint.source_config["queue_url"], MessageBody=eventbridge_event("evt-sqs")
    )
    settings.SWITCHYARD_EGRESS_ALLOW = []  # moto's server is on loopback: now refused
    consumer = SqsConsumer(endpoint)
    with pytest.raises(egress.EgressRefused, match="loopback"):
        consumer.receive_once()
    assert not InboundEvent.objects.filter(endpoint=endpoint).exists()


def test_an_sqs_connection_is_checked_when_it_is_opened(sqs, sqs_endpoint, settings):
    endpoint = sqs_endpoint()
    sqs.send_message(
        QueueUrl=endpoint.source_config["queue_url"], MessageBody=eventbridge_event("evt-sqs")
    )
    consumer = SqsConsumer(endpoint)
    try:
        consumer.client()  # built while the policy allowed it
        settings.SWITCHYARD_EGRESS_ALLOW = []
        with pytest.raises(egress.EgressRefused, match="loopback"):
            consumer.receive_once()
        settings.SWITCHYARD_EGRESS_ALLOW = ["127.0.0.1"]
        assert consumer.receive_once() == (1, 1)
    finally:
        consumer.close()


def _sqs_by_name(endpoint: WebhookEndpoint, name: str) -> None:
    """The endpoint's SQS server (moto's, on loopback) configured by a name only egress's resolver
    knows: botocore's own client, resolving by itself, would find no such host."""
    config = endpoint.source_config
    for field in ("endpoint_url", "queue_url"):
        config[field] = config[field].replace("127.0.0.1", name)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(source_config=config)


def test_sqs_requests_go_out_through_egress_to_the_checked_address(
    sqs, sqs_endpoint, monkeypatch, settings
):
    endpoint = sqs_endpoint()
    sqs.send_message(
        QueueUrl=endpoint.source_config["queue_url"], MessageBody=eventbridge_event("evt-pin")
    )
    _sqs_by_name(endpoint, "sqs.internal.test")
    settings.SWITCHYARD_EGRESS_ALLOW = ["sqs.internal.test"]
    asked = _resolves(monkeypatch, {"sqs.internal.test": ["127.0.0.1"]})
    consumer = SqsConsumer(endpoint)
    try:
        assert consumer.receive_once() == (1, 1)  # receive, then delete: two requests
    finally:
        consumer.close()
    # Once when the client is built, then once per connection the pinned session opened.
    assert set(asked) == {"sqs.internal.test"} and len(asked) >= 2
    assert InboundEvent.objects.filter(endpoint=endpoint, external_id="evt-pin").exists()


def test_an_sqs_name_rebound_inward_after_the_build_check_gets_no_connection(
    sqs, sqs_endpoint, monkeypatch, settings
):
    """The connection's own lookup is the one judged (the earlier check passed)."""
    endpoint = sqs_endpoint()
    _sqs_by_name(endpoint, "sqs.example.test")
    settings.SWITCHYARD_EGRESS_ALLOW = ["127.0.0.1"]  # loopback allowed, the metadata range not
    _resolves(monkeypatch, {"sqs.example.test": ["127.0.0.1"]})
    consumer = SqsConsumer(endpoint)
    opened = []
    try:
        consumer.client()  # checked and built while the name answered an allowed address
        _resolves(monkeypatch, {"sqs.example.test": ["169.254.169.254"]})
        monkeypatch.setattr(
            egress, "create_connection", lambda *args, **kwargs: opened.append(args) or 1 / 0
        )
        with pytest.raises(egress.EgressRefused, match=r"169\.254\.169\.254"):
            consumer.receive_once()
    finally:
        consumer.close()
    assert opened == []


class _Session:
    """Stands for an egress session: records what it is asked to send, answers ``answer``."""

    def __init__(self, answer=None, error: Exception | None = None):
        self.answer, self.error, self.sent = answer, error, []

    def send(self, prepared, **kwargs):
        self.sent.append((prepared, kwargs))
        if self.error is not None:
            raise self.error
        return self.answer


def _signed_request():
    request = AWSRequest(
        method="POST",
        url="https://sqs.us-east-1.amazonaws.com/",
        data=b'{"QueueUrl": "q"}',
        headers={"Authorization": "AWS4-HMAC-SHA256 signed", "X-Amz-Date": "20261206T000000Z"},
    )
    prepared = request.prepare()
    # As botocore's endpoint hands them on: header values encoded (Endpoint._encode_headers).
    prepared.headers = {name: value.encode() for name, value in prepared.headers.items()}
    return prepared


def test_sqs_send_passes_botocores_signed_request_as_it_is_and_its_answer_back():
    answer = requests.Response()
    answer.status_code, answer._content = 200, b'{"Messages": []}'
    answer.headers["x-amzn-RequestId"] = "r-1"
    session = _Session(answer)
    response = broker_egress.SqsSend(session, timeout=(5, 30))(_signed_request())
    [(prepared, options)] = session.sent
    assert dict(prepared.headers) == {
        "Authorization": b"AWS4-HMAC-SHA256 signed",
        "X-Amz-Date": b"20261206T000000Z",
        "Content-Length": "17",
    }
    assert prepared.body == b'{"QueueUrl": "q"}'
    assert options == {
        "timeout": (5, 30),
        "deadline": 35,
        "max_bytes": broker_egress.SQS_MAX_ANSWER_BYTES,
    }
    assert (response.status_code, response.content) == (200, b'{"Messages": []}')
    assert response.headers["X-Amzn-RequestId"] == "r-1"


@pytest.mark.parametrize(
    ("raised", "becomes"),
    [
        (requests.exceptions.ConnectTimeout("slow"), botocore_errors.ConnectTimeoutError),
        (requests.exceptions.ReadTimeout("slow"), botocore_errors.ReadTimeoutError),
        (requests.exceptions.SSLError("bad certificate"), botocore_errors.SSLError),
        (requests.exceptions.ConnectionError("refused"), botocore_errors.EndpointConnectionError),
        (requests.exceptions.ChunkedEncodingError("cut"), botocore_errors.ConnectionClosedError),
    ],
)
def test_sqs_send_failures_are_botocores_own_so_its_retries_apply(raised, becomes):
    send = broker_egress.SqsSend(_Session(error=raised), timeout=(5, 30))
    with pytest.raises(becomes):
        send(_signed_request())


def test_sqs_send_passes_a_refusal_through_and_refuses_an_oversize_answer():
    refused = egress.EgressRefused("refused: 10.0.0.1 is private")
    with pytest.raises(egress.EgressRefused):
        broker_egress.SqsSend(_Session(error=refused), timeout=(5, 30))(_signed_request())
    answer = requests.Response()
    answer.status_code = 200
    answer._content = b"x" * (broker_egress.SQS_MAX_ANSWER_BYTES + 1)
    with pytest.raises(broker_egress.SqsAnswerTooLarge):
        broker_egress.SqsSend(_Session(answer), timeout=(5, 30))(_signed_request())


def test_a_full_batch_of_the_largest_messages_is_received(sqs, sqs_endpoint):
    """Ten messages near SQS's 1 MiB limit: the answer's cap leaves them room."""
    endpoint = sqs_endpoint()
    queue_url = endpoint.source_config["queue_url"]
    for number in range(10):
        payload = {"id": number, "note": '\u00e9"' * 125_000}  # escaped twice on the way
        body = eventbridge_event(f"evt-big-{number}", payload=payload)
        assert 1_000_000 < len(body.encode()) <= 1_048_576
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    consumer = SqsConsumer(endpoint)
    received = 0
    try:
        for _ in range(10):
            received += consumer.receive_once()[0]
            if received == 10:
                break
    finally:
        consumer.close()
    assert received == 10
