"""The call's deadline holds while an answer's head is read, not only its body: a server sending
its status line and headers a byte at a time, each within the read timeout, is cut off when the
deadline passes, over plain TCP and TLS, and in a forked child (django-q2's workers) too. Times
asserted are generous bounds, never measurements."""

import datetime
import os
import socket
import ssl
import threading
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from integrations import egress_deadline
from integrations.egress import session_for
from integrations.egress_deadline import HeadDeadlineExpired, call_expires, head_deadline

HEAD = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 200 + b"\r\nContent-Length: 0\r\n\r\n"


def _drip(connection: socket.socket, stop: threading.Event) -> None:
    """One head byte every 0.1 s (never a read timeout's wait), for at most 8 s."""
    for index in range(min(len(HEAD), 80)):
        if stop.is_set():
            return
        try:
            connection.sendall(HEAD[index : index + 1])
        except OSError:
            return
        time.sleep(0.1)


@pytest.fixture
def dripping_head():
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                _drip(connection, stop)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    server.close()


def _slow_head_call(url: str) -> float:
    """Seconds until the call failed on its deadline (no single read waits 10 s)."""
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout, match="within the 1 s deadline"):
        session_for("http").get(url, timeout=(1, 10))
    return time.monotonic() - started


def test_a_dripped_head_is_cut_off_at_the_deadline(dripping_head, settings):
    settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS = 1
    assert _slow_head_call(dripping_head) < 4  # the drip itself would last 8 s


def test_a_forked_child_holds_heads_to_the_deadline_too(dripping_head, settings):
    settings.SWITCHYARD_ATTEMPT_DEADLINE_SECONDS = 1
    _slow_head_call(dripping_head)  # this process's watchdog is running when it forks
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports by its exit code)
        code = 1
        try:
            code = 0 if _slow_head_call(dripping_head) < 4 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _certificate() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def test_a_tls_head_read_is_ended_at_the_deadline(tmp_path):
    """The watchdog shuts the socket down under the TLS object the reading thread is using."""
    certificate, key = _certificate()
    (tmp_path / "cert.pem").write_bytes(certificate)
    (tmp_path / "key.pem").write_bytes(key)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        connection, _ = server.accept()
        with server_context.wrap_socket(connection, server_side=True) as tls:
            _drip(tls, stop)

    threading.Thread(target=serve, daemon=True).start()
    client_context = ssl.create_default_context()
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE  # the watchdog is tested here, not verification
    raw = socket.create_connection(server.getsockname(), timeout=10)
    tls = client_context.wrap_socket(raw, server_hostname="localhost")
    token = call_expires.set(time.monotonic() + 1)
    started = time.monotonic()
    try:
        with pytest.raises(HeadDeadlineExpired), head_deadline(tls):
            reader = tls.makefile("rb")
            while reader.readline():  # as http.client reads a head: line by line
                pass
            raise ConnectionError("closed before the head was complete")  # as http.client does
    finally:
        call_expires.reset(token)
        stop.set()
        tls.close()
        server.close()
    assert time.monotonic() - started < 4


def test_without_a_deadline_nothing_is_watched():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        with head_deadline(ours):
            assert egress_deadline._WATCHDOG._heads == {}  # nothing registered for it
            assert ours.recv(64).startswith(b"HTTP/1.1 204")


def test_a_deadline_already_passed_reads_nothing():
    ours, theirs = socket.socketpair()
    token = call_expires.set(time.monotonic() - 1)
    try:
        with ours, theirs, pytest.raises(HeadDeadlineExpired), head_deadline(ours):
            pytest.fail("the head was read after the deadline")
    finally:
        call_expires.reset(token)


@pytest.fixture
def deadline_in():
    """Sets this context's call deadline ``seconds`` from now (reset after the test)."""
    tokens = []

    def set_(seconds: float) -> None:
        tokens.append(call_expires.set(time.monotonic() + seconds))

    yield set_
    for token in reversed(tokens):
        call_expires.reset(token)


def test_a_head_cut_short_that_reads_as_complete_is_still_expired(deadline_in):
    """http.client takes an end of file among the headers for their end and returns."""
    ours, theirs = socket.socketpair()
    deadline_in(0.3)
    with ours, theirs:
        theirs.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: 1\r\n")  # and then nothing
        with pytest.raises(HeadDeadlineExpired), head_deadline(ours):
            reader = ours.makefile("rb")
            while reader.readline():
                pass


def test_the_watchdog_shuts_down_only_the_socket_it_was_given(deadline_in):
    """The reading thread may close its socket before the head is unregistered, and another
    socket may take its descriptor number: the shutdown reaches the watched socket only."""
    ours, theirs = socket.socketpair()
    deadline_in(0.3)
    with theirs, pytest.raises(HeadDeadlineExpired), head_deadline(ours):
        ours.close()  # as http.client closes on an error
        other, peer = socket.socketpair()  # may reuse the closed descriptor's number
        with other, peer:
            assert theirs.recv(1, socket.MSG_PEEK) == b""  # the watched socket was shut down
            other.sendall(b"still open")
            assert peer.recv(64) == b"still open"
        raise ConnectionError("closed")


def test_a_watchdog_that_could_not_start_is_started_by_the_next_call(
    deadline_in, monkeypatch, caplog
):
    watchdog = egress_deadline._Watchdog()
    real_start = threading.Thread.start

    def refused(thread):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refused)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with watchdog.watching(ours, time.monotonic() + 0.1) as head:
            time.sleep(0.3)
        assert not head.expired  # unwatched, and said so
        assert "egress.head_deadline_unwatched" in caplog.text
        monkeypatch.setattr(threading.Thread, "start", real_start)
        with watchdog.watching(ours, time.monotonic() + 0.1) as head:
            expires = time.monotonic() + 5
            while not head.expired and time.monotonic() < expires:
                time.sleep(0.02)
        assert head.expired


def test_a_watchdog_whose_thread_is_gone_starts_another():
    watchdog = egress_deadline._Watchdog()
    finished = threading.Thread(target=lambda: None)
    finished.start()
    finished.join()
    watchdog._thread = finished  # as if it had died
    ours, theirs = socket.socketpair()
    with ours, theirs, watchdog.watching(ours, time.monotonic() + 0.1) as head:
        expires = time.monotonic() + 5
        while not head.expired and time.monotonic() < expires:
            time.sleep(0.02)
    assert head.expired
