"""Egress: every outbound path goes through one policy, and a refused destination never gets a
TCP connection (issue 14). A loopback listener that is not in SWITCHYARD_EGRESS_ALLOW receives
nothing, whichever way its address is spelled; for other non-public addresses not even a
connect() is attempted; an allowed listener still works end to end. Nothing leaves this machine
(tests/conftest.py resolves names without DNS and guards connect())."""

import contextlib
import json
import socket
import threading
import time

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from integrations import egress
from integrations.checks import check_egress_allow, check_egress_allow_deploy
from integrations.deliveries.services import deliveries_attempt, delivery_create
from integrations.models import Delivery, Integration
from integrations.services import integration_check
from tests.webhooks.conftest import make_endpoint, post_webhook  # noqa: F401  (fixtures)
from webhooks.models import Subscription
from webhooks.services import subscription_create

pytestmark = pytest.mark.django_db

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "localhost",
    "[::1]",
    "0x7f000001",
    "2130706433",
    "127.1",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
    "0.0.0.0",
]
NON_PUBLIC_SPELLINGS = [
    "10.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "192.168.1.1",
    "[fd00::1]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::]",
    "[::ffff:10.0.0.1]",
]
W3C_BODY = {"value": {"ready": True, "message": "ok", "nodes": [], "sessionId": "s-1"}}


def _received_head(connection: socket.socket) -> bytes | None:
    """What a client sent up to the end of its request's head (and any body bytes with it), or
    None if it hung up first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


class Listener:
    """A plain TCP server on 127.0.0.1 (and ::1 on the same port where free). Unless serving,
    it never accepts by itself: ``accepted()`` takes whatever completed handshakes wait in the
    backlog. Serving, it records every request and answers ``reply`` (200, ``W3C_BODY``)."""

    def __init__(self, *, serve: bool = False):
        self.sockets = [socket.create_server(("127.0.0.1", 0))]
        self.port = self.sockets[0].getsockname()[1]
        with contextlib.suppress(OSError):  # without IPv6 loopback, connects still cover [::1]
            self.sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        self.requests: list[bytes] = []
        self.count = 0
        payload = json.dumps(W3C_BODY).encode()
        self.reply = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        for sock in self.sockets if serve else ():
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def accepted(self) -> int:
        for sock in self.sockets:
            sock.setblocking(False)
            while True:
                try:
                    connection, _ = sock.accept()
                except BlockingIOError:
                    break
                connection.close()
                self.count += 1
        return self.count

    def _serve(self, sock):
        while True:
            try:
                connection, _ = sock.accept()
            except OSError:
                return
            self.count += 1
            with connection:
                self._answer(connection)

    def _answer(self, connection):
        data = _received_head(connection)
        if data is None:
            return
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            body += connection.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        connection.sendall(self.reply)

    def close(self):
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture
def serving_listener():
    listener = Listener(serve=True)
    yield listener
    listener.close()


@pytest.fixture
def connects(monkeypatch):
    """Every connect() and create_connection() attempted, whatever its outcome."""
    calls = []
    guarded_connect, real_create_connection = socket.socket.connect, socket.create_connection

    def connect(sock, address):
        calls.append(address)
        return guarded_connect(sock, address)

    def create_connection(address, *args, **kwargs):
        calls.append(address)
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return calls


@pytest.fixture
def narrow(settings):
    """The allow list without loopback (tests/settings.py lists it for the tests' servers)."""
    settings.SWITCHYARD_EGRESS_ALLOW = ["192.0.2.10:443"]
    return settings


# --- the outbound paths ---------------------------------------------------------------------


def _stored_integration(customer, provider: str, base_url: str) -> Integration:
    # Stored without the configuration-time check: as if configured before the allow list
    # changed (or the name resolved elsewhere then), so only send time is tested here.
    return Integration.objects.create(
        customer=customer, provider_key=provider, config={"base_url": base_url}
    )


def _deliver(customer, action: str, input: dict) -> tuple[str, str, str]:
    delivery, _ = delivery_create(api_key=None, customer=customer.slug, action=action, input=input)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    deliveries_attempt(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    attempt = delivery.attempt_log.get()
    if attempt.outcome != "success":
        assert delivery.status == Delivery.Status.DEAD  # terminal: never retried
    return attempt.outcome, attempt.error_class, attempt.error


def http_delivery(customer, base_url, **_):
    _stored_integration(customer, "http", base_url)
    return _deliver(customer, "http.request", {"method": "POST", "path": "/x", "body": {}})


def selenium_delivery(customer, base_url, **_):
    _stored_integration(customer, "selenium", base_url)
    return _deliver(customer, "selenium.status", {})


def http_check(customer, base_url, **_):
    outcome = integration_check(integration=_stored_integration(customer, "http", base_url))
    return outcome.outcome, outcome.error_class, outcome.error


def selenium_check(customer, base_url, **_):
    outcome = integration_check(integration=_stored_integration(customer, "selenium", base_url))
    return outcome.outcome, outcome.error_class, outcome.error


def subscription_send(customer, base_url, *, webhooks, **_):
    endpoint_for, post = webhooks
    # Created while allowed to be private; then an admin took allow_private away.
    subscription, _ = subscription_create(
        url=f"{base_url}/hook", event_types=["*"], allow_private=True, customer=customer
    )
    Subscription.objects.filter(pk=subscription.pk).update(allow_private=False)
    assert post(endpoint_for("shopify")).status_code == 202
    delivery = Delivery.objects.get(action="standard_webhooks.send")
    attempt = delivery.attempt_log.get()
    if attempt.outcome != "success":
        assert delivery.status == Delivery.Status.DEAD
    return attempt.outcome, attempt.error_class, attempt.error


PATHS = [http_delivery, selenium_delivery, http_check, selenium_check, subscription_send]


@pytest.fixture
def send(acme, make_endpoint, post_webhook):  # noqa: F811  (the imported fixtures)
    def run(path, base_url):
        return path(acme, base_url, webhooks=(make_endpoint, post_webhook))

    return run


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_a_loopback_listener_not_allowed_gets_no_connection(
    send, path, spelling, listener, connects, narrow
):
    outcome, error_class, error = send(path, f"http://{spelling}:{listener.port}")
    assert (outcome, error_class) == ("terminal", "egress_refused")
    # The caller reads the policy's words; which address the name had is the log's.
    assert error == egress.EgressRefused.public_message
    assert "SWITCHYARD_EGRESS_ALLOW" in error
    assert connects == []
    assert listener.accepted() == 0


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("spelling", NON_PUBLIC_SPELLINGS)
def test_no_connect_is_even_attempted_to_a_non_public_address(
    send, path, spelling, connects, narrow
):
    outcome, error_class, error = send(path, f"http://{spelling}:8080")
    assert (outcome, error_class) == ("terminal", "egress_refused")
    assert "non-public" in error
    assert connects == []


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__)
def test_an_allowed_listener_works_end_to_end(send, path, serving_listener, settings):
    settings.SWITCHYARD_EGRESS_ALLOW = [f"127.0.0.1:{serving_listener.port}"]
    outcome, error_class, error = send(path, f"http://127.0.0.1:{serving_listener.port}")
    assert (outcome, error_class, error) == ("success", "", "")
    [request] = serving_listener.requests
    assert f"User-Agent: {egress.USER_AGENT}".encode() in request


def test_the_allow_entry_port_must_match(send, listener, connects, settings):
    settings.SWITCHYARD_EGRESS_ALLOW = [f"127.0.0.1:{listener.port + 1}"]
    outcome, error_class, _ = send(http_delivery, f"http://127.0.0.1:{listener.port}")
    assert (outcome, error_class) == ("terminal", "egress_refused")
    assert connects == [] and listener.accepted() == 0


def test_a_refusal_is_terminal_not_a_retryable_connection_error(send, listener, narrow):
    send(http_delivery, f"http://127.0.0.1:{listener.port}")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.DEAD, 1)
    assert delivery.dead_reason == Delivery.DeadReason.CONFIGURATION
    assert delivery.last_error.startswith(egress.EgressRefused.public_message)
    assert "127.0.0.1" not in delivery.last_error


def test_proxy_environment_is_ignored_and_the_user_agent_is_switchyards(
    serving_listener, connects, monkeypatch, settings
):
    proxy = "http://10.255.255.1:3128"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy)
    settings.SWITCHYARD_EGRESS_ALLOW = [f"127.0.0.1:{serving_listener.port}"]
    response = egress.session_for("http").get(f"http://127.0.0.1:{serving_listener.port}/")
    assert response.status_code == 200
    assert [address[0] for address in connects] == ["127.0.0.1"]  # straight there, no proxy
    assert f"User-Agent: {egress.USER_AGENT}".encode() in serving_listener.requests[0]


def test_pinning_connects_to_the_checked_address_and_keeps_the_host_name(monkeypatch, connects):
    """One resolution, checked, then connected to by address: the Host header (and TLS SNI)
    still carry the name. The public address here is stopped by the test network guard."""
    monkeypatch.setattr(
        egress,
        "_getaddrinfo",
        lambda host, port, family=0: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.4.4", port))
        ],
    )
    with pytest.raises(requests.ConnectionError, match="test network guard"):
        egress.session_for("http").get("http://api.example.com:8080/", timeout=1)
    assert connects == [("8.8.4.4", 8080)]


def test_redirects_are_answers_never_followed(serving_listener, settings, connects):
    settings.SWITCHYARD_EGRESS_ALLOW = [f"127.0.0.1:{serving_listener.port}"]
    serving_listener.reply = (
        b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    response = egress.session_for("http").get(f"http://127.0.0.1:{serving_listener.port}/")
    assert response.status_code == 302
    assert len(serving_listener.requests) == 1
    assert [address[0] for address in connects] == ["127.0.0.1"]


def _endless_redirect(sent: list[int]) -> socket.socket:
    """A server answering one request with a 302 whose body runs to 64 MiB; ``sent`` gets the
    bytes it managed to send before the client hung up."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        connection, _ = server.accept()
        with connection:
            if _received_head(connection) is None:
                return
            body_size, chunk, total = 64 * 1024 * 1024, b"x" * 65536, 0
            head = (
                "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
                f"Content-Length: {body_size}\r\n\r\n"
            )
            connection.sendall(head.encode())
            try:
                while total < body_size:
                    total += connection.send(chunk)
            except OSError:
                pass
            sent.append(total)

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_a_redirects_body_is_held_to_the_size_cap_too(settings):
    """requests reads a 3xx's whole body to prepare the next hop, even with redirects off."""
    sent: list[int] = []
    server = _endless_redirect(sent)
    port = server.getsockname()[1]
    settings.SWITCHYARD_EGRESS_ALLOW = [f"127.0.0.1:{port}"]
    try:
        response = egress.session_for("http").get(f"http://127.0.0.1:{port}/", timeout=10)
    finally:
        server.close()
    assert response.status_code == 302
    assert egress.MAX_RESPONSE_BYTES < len(response.content) <= egress.MAX_RESPONSE_BYTES + 65536
    response.close()
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    # What the socket buffers took beyond the cap, never the whole 64 MiB.
    assert sent and sent[0] < 24 * 1024 * 1024


def test_the_check_is_held_to_its_own_deadline(acme, settings, monkeypatch):
    """The deadline reaches the session: an integration check uses the check's, not the
    attempt's (what is asserted is the message, never how long it took)."""
    settings.SWITCHYARD_CHECK_DEADLINE_SECONDS = 1
    settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS = 30
    seen = []

    def send(self, request, **kwargs):
        seen.append(kwargs.get("deadline"))
        raise requests.exceptions.ReadTimeout("stopped here")

    monkeypatch.setattr(egress.DeadlineSession, "send", send)
    integration = Integration.objects.create(
        customer=acme, provider_key="http", config={"base_url": "https://hooks.example.com"}
    )
    outcome = integration_check(integration=integration)
    assert (outcome.outcome, outcome.error_class) == ("retryable", "read_timeout")
    assert seen == [1.0]


# --- configuration time ---------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [*LOOPBACK_SPELLINGS, *NON_PUBLIC_SPELLINGS])
def test_a_refused_base_url_is_a_400_naming_config_base_url(api, acme, narrow, spelling):
    body = {"customer": "acme", "provider": "http", "config": {"base_url": f"http://{spelling}/"}}
    response = api.post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 400
    [message] = response.json()["errors"]["config"]["base_url"]
    assert "non-public" in message and "SWITCHYARD_EGRESS_ALLOW" in message
    # The caller is not told what the name resolved to ("localhost" → 127.0.0.1).
    assert message == egress.EgressRefused.public_message
    assert not Integration.objects.exists()


def test_a_base_url_in_the_allow_list_is_accepted(api, acme, settings):
    settings.SWITCHYARD_EGRESS_ALLOW = ["127.0.0.1:9100"]
    body = {"customer": "acme", "provider": "http", "config": {"base_url": "http://127.1:9100/"}}
    assert api.post("/api/v1/integrations/", body, format="json").status_code == 201
    body["config"]["base_url"] = "http://127.0.0.1:9101/"  # another port is not listed
    body["provider"] = "selenium"
    assert api.post("/api/v1/integrations/", body, format="json").status_code == 400


def test_a_base_url_that_does_not_resolve_is_refused(api, acme):
    body = {"customer": "acme", "provider": "http", "config": {"base_url": "http://nx.invalid/"}}
    response = api.post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 400
    # Worded as a refused address is: the answer does not tell which internal names exist.
    assert response.json()["errors"]["config"]["base_url"] == [egress.EgressRefused.public_message]


def test_a_base_url_refused_for_its_shape_says_what_to_fix(api, acme):
    body = {"customer": "acme", "provider": "http", "config": {"base_url": "http://u:p@x.test/"}}
    response = api.post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 400
    [message] = response.json()["errors"]["config"]["base_url"]
    assert "user name or password" in message and "u:p" not in message


@pytest.mark.parametrize("spelling", ["0x7f000001", "[::ffff:127.0.0.1]", "169.254.169.254"])
def test_a_refused_subscription_url_is_a_400_naming_url(api, narrow, spelling):
    body = {"url": f"http://{spelling}/hook", "event_types": ["*"]}
    response = api.post("/api/v1/subscriptions/", body, format="json")
    assert response.status_code == 400
    assert "non-public" in response.json()["errors"]["url"][0]
    assert not Subscription.objects.exists()


def test_allow_private_reaches_a_private_subscription_but_nothing_else(narrow):
    egress.destination_check("http://10.0.0.5/hook", allow_private=True)
    with pytest.raises(egress.EgressRefused):
        egress.destination_check("http://10.0.0.5/hook")


# --- the policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "0.0.0.0",
        "10.0.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "192.168.1.1",
        "224.0.0.1",
        "::1",
        "::",
        "fd00::1",
        "fe80::1%1",
        "fec0::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::7f00:1",  # IPv4-compatible
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::808:808",  # local-use NAT64 prefix
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_non_public_addresses(address):
    assert not egress.is_public_address(address)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses(address):
    assert egress.is_public_address(address)


@pytest.mark.parametrize(
    ("entry", "host", "network", "port"),
    [
        ("fakeprovider:9100", "fakeprovider", None, 9100),
        ("Selenium-Hub", "selenium-hub", None, None),
        ("127.0.0.1:9100", None, "127.0.0.1/32", 9100),
        ("[::1]:9100", None, "::1/128", 9100),
        ("::1", None, "::1/128", None),
        ("10.0.0.0/8", None, "10.0.0.0/8", None),
        ("::1/128", None, "::1/128", None),
    ],
)
def test_allow_entries_parse(entry, host, network, port):
    parsed = egress.parse_allow_entry(entry)
    assert (parsed.host, str(parsed.network) if parsed.network else None, parsed.port) == (
        host,
        network,
        port,
    )


@pytest.mark.parametrize("entry", ["a b", "host:port", "10.0.0.0/33", "[::1]x", "h:0"])
def test_malformed_allow_entries_are_errors_and_allow_nothing(entry, settings):
    settings.SWITCHYARD_EGRESS_ALLOW = [entry]
    [error] = check_egress_allow()
    assert error.id == "switchyard.E010"
    with pytest.raises(egress.EgressRefused):
        egress.destination_check("http://10.0.0.1/")


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://10.1.2.3/", "10.0.0.0/8"),
        ("http://grid.internal:4444/", "grid.internal:4444"),
        ("https://grid.internal/", "grid.internal"),
        ("http://[::1]:9100/", "::1/128"),
        ("http://[::ffff:127.0.0.1]:9100/", "127.0.0.1"),
    ],
)
def test_allow_entries_open_exactly_their_destination(url, allow, settings, monkeypatch):
    monkeypatch.setattr(
        egress,
        "_getaddrinfo",
        lambda host, port, family=0: socket.getaddrinfo(
            "10.9.9.9" if host == "grid.internal" else host, port, 0, socket.SOCK_STREAM
        ),
    )
    settings.SWITCHYARD_EGRESS_ALLOW = []
    with pytest.raises(egress.EgressRefused):
        egress.destination_check(url)
    settings.SWITCHYARD_EGRESS_ALLOW = [allow]
    egress.destination_check(url)


# --- manage.py check --deploy ---------------------------------------------------------------


@pytest.mark.parametrize("entry", ["0.0.0.0/0", "::/0", "8.8.8.8", "1.0.0.0/8", "api.example.com"])
def test_deploy_check_warns_of_public_allow_entries(entry, settings):
    settings.SWITCHYARD_EGRESS_ALLOW = ["127.0.0.1:9100", entry]
    [warning] = check_egress_allow_deploy()
    assert warning.id == "switchyard.W010" and entry in warning.msg


def test_deploy_check_is_quiet_for_internal_entries(settings):
    settings.SWITCHYARD_EGRESS_ALLOW = ["127.0.0.1:9100", "10.0.0.0/8", "fd00::/8", "[::1]:4444"]
    assert check_egress_allow_deploy() == []


def test_manage_py_check_deploy_reports_it(settings):
    settings.SWITCHYARD_EGRESS_ALLOW = ["0.0.0.0/0"]
    with pytest.raises(SystemCheckError, match=r"switchyard\.W010"):
        call_command("check", deploy=True, fail_level="WARNING", tags=["switchyard"])
