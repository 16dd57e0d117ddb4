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
import logging
import math
import os
import socket
import threading
import time
from contextvars import ContextVar

__all__ = ("HeadDeadlineExpired", "call_expires", "head_deadline")

logger = logging.getLogger(__name__)

_CUT = "the call's deadline passed while its answer's head was read"

# When the call being made in this context must be done by (time.monotonic()), if it has one.
call_expires: ContextVar[float | None] = ContextVar("egress_call_expires", default=None)


class HeadDeadlineExpired(TimeoutError):
    """The head was not in when the call's deadline passed (urllib3 reports a read timeout)."""


class _Head:
    """A head being read. ``duplicate`` is a descriptor of the socket made by the reading thread
    and closed by it only once the head is no longer registered, so the number the watchdog
    shuts down can never have been reused by another socket meanwhile. Shutting down affects the
    socket itself, and never touches the TLS object the reading thread is using."""

    def __init__(self, sock: socket.socket, expires: float):
        self.duplicate = os.dup(sock.fileno())
        self.expires = expires
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        with contextlib.suppress(OSError):
            borrowed = socket.socket(fileno=self.duplicate)
            try:
                borrowed.shutdown(socket.SHUT_RDWR)
            finally:
                borrowed.detach()  # the reading thread closes the duplicate, never this one


class _Watchdog:
    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._heads: dict[int, _Head] = {}
        self._wakes_at = math.inf
        self._thread: threading.Thread | None = None

    def _running(self) -> bool:
        """Start the thread if it is not running (first use, or it could not start before)."""
        if self._thread is not None and self._thread.is_alive():
            return True
        thread = threading.Thread(target=self._run, name="egress-head-deadline", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: the body's deadline still holds
            logger.error("egress.head_deadline_unwatched reason=thread_start_failed")
            return False
        self._thread = thread
        return True

    @contextlib.contextmanager
    def watching(self, sock: socket.socket, expires: float):
        head = _Head(sock, expires)
        try:
            with self._changed:
                if self._running():
                    self._heads[id(head)] = head
                    if expires < self._wakes_at:
                        self._changed.notify()
            yield head
        finally:
            with self._changed:
                self._heads.pop(id(head), None)
            os.close(head.duplicate)

    def _run(self) -> None:
        with self._changed:
            while True:
                try:
                    self._expire_due()
                except Exception:  # one bad head must not end every later deadline
                    logger.exception("egress.head_deadline_failed")
                now = time.monotonic()
                self._wakes_at = min((h.expires for h in self._heads.values()), default=math.inf)
                wait = min(self._wakes_at - now, threading.TIMEOUT_MAX)
                self._changed.wait(None if self._wakes_at == math.inf else max(wait, 0))

    def _expire_due(self) -> None:
        now = time.monotonic()
        for key, head in list(self._heads.items()):
            if head.expires <= now:
                del self._heads[key]
                head.expire()


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
                raise HeadDeadlineExpired(_CUT) from exc
            raise
    # http.client takes an end of file among the headers for their end: a cut head may return.
    if head.expired:
        raise HeadDeadlineExpired(_CUT)
