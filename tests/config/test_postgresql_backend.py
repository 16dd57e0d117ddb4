"""config.postgresql: the health check skips SELECT 1 only on a connection that answered a
request moments ago and shows nothing on its socket; a connection the server ended is still
found out and replaced before the request's first query."""

import time
from unittest import mock

import pytest
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoDatabaseWrapper

from config.postgresql import base
from customers.models import Region

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the PostgreSQL backend's health check"
    ),
]


def _request(query=lambda: Region.objects.count()):
    """What a request does to the connection: the signals around it, a query in between."""
    request_started.send(sender=None)
    try:
        return query()
    finally:
        request_finished.send(sender=None)


@pytest.fixture
def select_one():
    """Spies on Django's own check (its SELECT 1)."""
    with mock.patch.object(
        DjangoDatabaseWrapper,
        "is_usable",
        autospec=True,
        side_effect=DjangoDatabaseWrapper.is_usable,
    ) as spy:
        yield spy


def _terminate(backend_pid: int) -> None:
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    finally:
        other.close()


def test_the_project_uses_this_backend():
    assert isinstance(connections[DEFAULT_DB_ALIAS], base.DatabaseWrapper)


def test_a_busy_connection_skips_select_one(select_one):
    _request()
    assert connection.health_check_enabled
    select_one.reset_mock()
    for _ in range(3):
        assert _request() == 0
    assert select_one.call_count == 0


def test_a_connection_quiet_for_longer_takes_the_full_check(select_one, monkeypatch):
    _request()
    monkeypatch.setattr(connection, "answered_at", time.monotonic() - base.QUIET_SECONDS - 1)
    select_one.reset_mock()
    _request()
    assert select_one.call_count == 1


def test_a_connection_the_server_ended_is_replaced_before_the_first_query(select_one, monkeypatch):
    monkeypatch.setattr(base, "QUIET_SECONDS", 60.0)  # the socket alone must tell
    _request()
    old_pid = connection.connection.info.backend_pid
    _terminate(old_pid)
    # The server's goodbye reaches the socket.
    deadline = time.monotonic() + 5
    while connection._socket_quiet() and time.monotonic() < deadline:
        time.sleep(0.01)
    select_one.reset_mock()

    def backend_pid():
        Region.objects.count()
        return connection.connection.info.backend_pid

    assert _request(backend_pid) != old_pid
    assert select_one.call_count == 1


def test_after_an_error_the_full_check_runs(select_one):
    _request()
    select_one.reset_mock()

    def failing():
        with pytest.raises(Exception), connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM customers_region")

    _request(failing)
    assert select_one.call_count == 1  # at the request's end, Django checks the failed connection
    assert _request() == 0


def test_a_session_ended_a_moment_before_the_request_costs_it_nothing():
    """The server's goodbye may not have reached the socket yet: the request's first read,
    standing in for the check, fails on the lost session and runs again on a new one."""
    for _ in range(20):
        _request()
        old_pid = connection.connection.info.backend_pid
        _terminate(old_pid)

        def backend_pid():
            Region.objects.count()
            return connection.connection.info.backend_pid

        assert _request(backend_pid) != old_pid  # no wait for the goodbye


@pytest.fixture
def goodbye_unseen(monkeypatch):
    """The session is ended and the server's goodbye not yet seen: the check is skipped."""
    monkeypatch.setattr(base, "QUIET_SECONDS", 60.0)
    _request()
    _terminate(connection.connection.info.backend_pid)
    time.sleep(0.2)  # the session is gone for sure
    monkeypatch.setattr(base.DatabaseWrapper, "_socket_quiet", lambda self: True)


def test_the_first_read_on_a_lost_session_runs_again_on_a_new_one(goodbye_unseen, select_one):
    assert _request() == 0
    assert select_one.call_count == 0


def test_a_write_on_a_lost_session_is_not_run_again(goodbye_unseen):
    """Only a read may run again: what became of a write on the old session is not known."""
    with pytest.raises(DatabaseError):
        _request(lambda: Region.objects.create(code="xx", name="X"))
    assert _request(lambda: Region.objects.filter(code="xx").count()) == 0


def test_a_read_inside_a_transaction_is_not_run_again(goodbye_unseen):
    with pytest.raises(DatabaseError):
        _request(lambda: transaction.atomic()(Region.objects.count)())
