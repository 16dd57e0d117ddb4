import os
import signal
import threading
import time

import pytest

from config.shutdown import StopRequest


@pytest.fixture
def restore_stop_handlers():
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_a_signal_during_wait_wakes_the_waiter_and_is_named(restore_stop_handlers):
    stop = StopRequest()
    stop.install()
    assert stop.wait(0) is False
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    assert stop.wait(30) is True
    assert time.monotonic() - started < 5
    assert stop.signum == signal.SIGTERM


def test_the_first_signal_is_the_one_named(restore_stop_handlers):
    stop = StopRequest()
    stop.install()
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.wait(5) is True
    assert stop.signum == signal.SIGINT


def test_set_from_another_thread_wakes_the_waiter_and_stays_set():
    stop = StopRequest()
    threading.Timer(0.2, stop.set).start()
    assert stop.wait(30) is True
    assert stop.signum is None
    assert stop.is_set() and stop.wait(0)


def test_wait_times_out_when_nothing_asks_to_stop():
    stop = StopRequest()
    started = time.monotonic()
    assert stop.wait(0.2) is False
    assert time.monotonic() - started >= 0.2
