"""The load generator ``bench/ingest.py`` and ``bench/api.py`` share: ``concurrency`` threads
POSTing for ``duration`` seconds, with the latency of every 2xx answer.

The generator shares the machine with what it measures, so it is kept cheap: requests are built
before the clock starts (``PREPARED`` per thread, more on the fly if a fast server uses them up)
and sent as prepared bytes over a plain socket, one connection each, as gunicorn's sync workers
close it after the answer."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable

__all__ = ("Load", "http_request")


def http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 POST as bytes, closing the connection after the answer."""
    headers = {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **headers,
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + body


class Load:
    """``build()`` returns the next request's bytes (each may differ: a new id, a new body)."""

    PREPARED = 1000

    def __init__(self, port: int, build: Callable[[], bytes], *, prepared: int = PREPARED):
        self.port, self.build, self.prepared = port, build, prepared
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.lock = threading.Lock()

    def _send(self, request: bytes) -> int:
        """The answer's status code; the whole answer is read (the server closes)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as connection:
            connection.sendall(request)
            answer = bytearray()
            while chunk := connection.recv(65536):
                answer += chunk
        return int(answer[9:12])

    def _worker(self, requests: list[bytes], start: threading.Barrier, duration: float) -> None:
        latencies, errors = [], {}
        more = (self.build() for _ in itertools.count())
        start.wait()
        deadline = time.monotonic() + duration
        for request in itertools.chain(requests, more):
            if time.monotonic() >= deadline:
                break
            started = time.perf_counter()
            try:
                status = self._send(request)
            except (OSError, ValueError) as exc:
                errors[exc.__class__.__name__] = errors.get(exc.__class__.__name__, 0) + 1
                continue
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - started)
            else:
                errors[f"http_{status}"] = errors.get(f"http_{status}", 0) + 1
        with self.lock:
            self.latencies += latencies
            for name, count in errors.items():
                self.errors[name] = self.errors.get(name, 0) + count

    def run(self, *, concurrency: int, duration: float) -> dict:
        start = threading.Barrier(concurrency + 1)
        threads = [
            threading.Thread(
                target=self._worker,
                args=([self.build() for _ in range(self.prepared)], start, duration),
            )
            for _ in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        start.wait()
        started = time.monotonic()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0

        return {
            "ok": len(ordered),
            "per_second": len(ordered) / elapsed,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "errors": self.errors,
        }

    @staticmethod
    def line(label: str, result: dict) -> str:
        return (
            f"{label:18} {result['per_second']:8.1f} accepted/s  p50 {result['p50_ms']:6.1f} ms"
            f"  p99 {result['p99_ms']:6.1f} ms  errors {result['errors'] or 0}"
        )
