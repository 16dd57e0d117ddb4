"""Stopping long-running processes (dispatcher, worker, fake provider) on SIGTERM and SIGINT.

A signal handler runs in the main thread between two bytecodes, possibly while that thread holds
a lock. ``threading.Event.set()`` from a handler can therefore wait for the lock that the
interrupted ``Event.wait()`` holds, and the process hangs until it is SIGKILLed. So the handler
here only sets a flag and writes a byte to a pipe. Neither takes a lock. The main thread waits
on the pipe and does the actual stopping outside signal context.
"""

import contextlib
import os
import select
import signal

__all__ = ("StopRequest",)


class StopRequest:
    """Set by SIGTERM/SIGINT (once ``install()`` ran) or by ``set()``; waited on with ``wait()``."""

    def __init__(self):
        self.signum: int | None = None
        self._requested = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def install(self, signums=(signal.SIGTERM, signal.SIGINT)) -> None:
        for signum in signums:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        if self.signum is None:
            self.signum = signum
        self.set()

    def set(self) -> None:
        # The flag is set before the byte is written, so a waiter that saw the flag unset
        # will still wake up when the byte arrives.
        self._requested = True
        with contextlib.suppress(BlockingIOError):  # a full pipe: the waiter is awake anyway
            os.write(self._wake_write, b"\0")

    def is_set(self) -> bool:
        return self._requested

    def wait(self, timeout: float | None = None) -> bool:
        """True once a stop was requested; False if ``timeout`` seconds passed first."""
        if not self._requested:
            select.select([self._wake_read], [], [], timeout)
        return self._requested
