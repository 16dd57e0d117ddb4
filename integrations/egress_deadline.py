"""The call's deadline while an answer's status line and headers are read.

``requests`` timeouts apply to each receive, so a server sending its headers a byte at a time,
each within the read timeout, holds a call for as long as it likes. ``DeadlineSession`` holds
the body to the call's deadline itself, between receives; the head is read inside http.client,
where nothing can be checked between receives. So while a connection waits for a head, its
socket is registered here, and one daemon thread per process shuts the socket down if the
deadline passes first: the blocked read ends, and the call fails as a read timeout.

The thread sleeps until the earliest registered deadline and holds no more than the heads being
waited for (one per thread making calls). A forked child starts afresh: the parent's thread is
not there, and its lock may have been held when the fork happened."""

import contextlib
import math
import os
import socket
import threading
import time
from contextvars import ContextVar

__all__ = ("HeadDeadlineExpired", "call_expires", "head_deadline")

# When the call being made in this context must be done by (time.monotonic()), if it has one.
call_expires: ContextVar[float | None] = ContextVar("egress_call_expires", default=None)


class HeadDeadlineExpired(TimeoutError):
    """The head was not in when the call's deadline passed (urllib3 reports a read timeout)."""


class _Head:
    def __init__(self, sock: socket.socket, expires: float):
        self.sock = sock
        self.expires = expires
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        # On a duplicate of the descriptor: shutting down affects the socket itself, and never
        # touches the TLS object the reading thread is using.
        with contextlib.suppress(OSError):
            duplicate = socket.socket(fileno=os.dup(self.sock.fileno()))
            with duplicate:
                duplicate.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._heads: dict[int, _Head] = {}
        self._wakes_at = math.inf
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watching(self, sock: socket.socket, expires: float):
        head = _Head(sock, expires)
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="egress-head-deadline", daemon=True
                )
                self._thread.start()
            self._heads[id(head)] = head
            if expires < self._wakes_at:
                self._changed.notify()
        try:
            yield head
        finally:
            with self._changed:
                self._heads.pop(id(head), None)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for key, head in list(self._heads.items()):
                    if head.expires <= now:
                        del self._heads[key]
                        head.expire()
                self._wakes_at = min((h.expires for h in self._heads.values()), default=math.inf)
                self._changed.wait(None if self._wakes_at == math.inf else self._wakes_at - now)


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG._reset)


@contextlib.contextmanager
def head_deadline(sock: socket.socket | None):
    """Around reading an answer's head on ``sock``: holds it to ``call_expires`` when the call
    has one. Raises ``HeadDeadlineExpired`` if the deadline ended the read."""
    expires = call_expires.get()
    if expires is None or sock is None:
        yield
        return
    if expires <= time.monotonic():
        raise HeadDeadlineExpired("the call's deadline passed before its answer's head was read")
    with _WATCHDOG.watching(sock, expires) as head:
        try:
            yield
        except Exception as exc:
            if head.expired:
                raise HeadDeadlineExpired(
                    "the call's deadline passed while its answer's head was read"
                ) from exc
            raise
