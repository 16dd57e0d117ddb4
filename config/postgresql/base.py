"""Django's PostgreSQL backend, whose health check (``CONN_HEALTH_CHECKS``) skips the
``SELECT 1`` round trip on a connection that answered a request moments ago and has nothing
waiting on its socket.

Django checks a persistent connection with ``SELECT 1`` at the start of every request that uses
it: on the API's accept path that is one round trip in six. A server that restarts, or ends an
idle session, sends its goodbye and closes the socket, which then polls readable; that is what
the poll here looks for (go-sql-driver/mysql checks connections the same way). Anything else
unusual (errors, an open transaction, bytes waiting, a quiet spell longer than
``QUIET_SECONDS``) takes Django's own check.

The goodbye can still be on its way when the request's first statement goes out (a session
ended a moment before): that statement then stands in for the check. If it is a read, outside
a transaction, and fails because the connection is gone, it runs again on a new connection;
nothing was read or written on the old one."""

import select
import time

import structlog
from django.db import DatabaseError
from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

__all__ = ("QUIET_SECONDS", "DatabaseWrapper")

logger = structlog.stdlib.get_logger(__name__)

# Longer than this since the connection last answered a request: a full SELECT 1 (a silently
# dropped connection, e.g. by a NAT's idle timeout, shows nothing on the socket).
QUIET_SECONDS = 5.0

# SQLSTATEs of a session the server ended or could not keep: connection exceptions (class 08),
# admin and crash shutdown, cannot connect now (57P01-57P03).
CONNECTION_LOST = ("08", "57P01", "57P02", "57P03")

_TROUBLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


class DatabaseWrapper(base.DatabaseWrapper):
    answered_at: float | None = None
    # The health check was skipped: the next statement is the check.
    unverified = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(self._first_read_retried)

    def is_usable(self) -> bool:
        if self._answered_lately() and self._socket_quiet():
            self.unverified = True
            return True
        return super().is_usable()

    def _first_read_retried(self, execute, sql, params, many, context):
        if not self.unverified:
            return execute(sql, params, many, context)
        self.unverified = False
        try:
            return execute(sql, params, many, context)
        except DatabaseError as exc:
            if not self._lost_before(exc, sql, many):
                raise
        logger.info("database.reconnected", reason="connection ended before the first read")
        self.close()
        self.connect()
        context["cursor"].cursor = self.create_cursor()
        return execute(sql, params, many, context)

    def _lost_before(self, error: DatabaseError, sql: str, many: bool) -> bool:
        """The read failed because the connection was gone, and may simply run again."""
        sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
        lost = self.connection is None or self.connection.broken or self.connection.closed
        lost = lost or sqlstate.startswith(CONNECTION_LOST)
        read = not many and sql.lstrip()[:6].upper() == "SELECT"
        return lost and read and not self.in_atomic_block and self.get_autocommit()

    def close_if_unusable_or_obsolete(self) -> None:
        # Called as a request starts and ends: a connection that ran this request's queries
        # without error has answered (at the start nothing has run yet).
        answered = self.connection is not None and self.health_check_done
        answered = answered and not self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if answered and self.connection is not None:
            self.answered_at = time.monotonic()

    def close(self) -> None:
        self.answered_at = None
        super().close()

    def _answered_lately(self) -> bool:
        return (
            self.answered_at is not None
            and not self.errors_occurred
            and time.monotonic() - self.answered_at < QUIET_SECONDS
        )

    def _socket_quiet(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != TransactionStatus.IDLE:
            return False
        poller = select.poll()
        poller.register(connection.fileno(), _TROUBLE)
        return not poller.poll(0)
