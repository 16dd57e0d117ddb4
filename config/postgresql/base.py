"""Django's PostgreSQL backend, whose health check (``CONN_HEALTH_CHECKS``) skips the
``SELECT 1`` round trip on a connection that answered a request moments ago and has nothing
waiting on its socket.

Django checks a persistent connection with ``SELECT 1`` at the start of every request that uses
it: on the API's accept path that is one round trip in six. A server that restarts, or ends an
idle session, sends its goodbye and closes the socket, which then polls readable; that is what
the poll here looks for (go-sql-driver/mysql checks connections the same way). Anything else
unusual (errors, an open transaction, bytes waiting, a quiet spell longer than
``QUIET_SECONDS``) takes Django's own check."""

import select
import time

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

__all__ = ("QUIET_SECONDS", "DatabaseWrapper")

# Longer than this since the connection last answered a request: a full SELECT 1 (a silently
# dropped connection, e.g. by a NAT's idle timeout, shows nothing on the socket).
QUIET_SECONDS = 5.0

_TROUBLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


class DatabaseWrapper(base.DatabaseWrapper):
    answered_at: float | None = None

    def is_usable(self) -> bool:
        if self._answered_lately() and self._socket_quiet():
            return True
        return super().is_usable()

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
