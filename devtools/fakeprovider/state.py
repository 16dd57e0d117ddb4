"""The fake provider server's shared state: the journal of requests, and the faults and limits a
test set."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ("FakeProviderState", "Fault", "Limit")

JOURNAL_MAX_ENTRIES = 100_000


@dataclass
class Fault:
    path_prefix: str
    status: int | None = None
    count: int | None = None  # None: every matching request until /_reset
    retry_after: float | None = None
    latency_ms: int = 0
    drop_connection: bool = False
    failure_rate: float = 0  # 0: always; 0 < r < 1: that share of matching requests


@dataclass
class Limit:
    path_prefix: str
    rate: int
    per_seconds: float
    hits: deque = field(default_factory=deque, repr=False)

    def admit(self, now: float) -> float | None:
        """None if the request fits the sliding window, else seconds until a slot frees."""
        while self.hits and self.hits[0] <= now - self.per_seconds:
            self.hits.popleft()
        if len(self.hits) >= self.rate:
            return max(self.hits[0] + self.per_seconds - now, 0.001)
        self.hits.append(now)
        return None


class FakeProviderState:
    """Journal, faults and limits; shared by the handler threads behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.journal: deque[dict] = deque(maxlen=JOURNAL_MAX_ENTRIES)
        self.faults: list[Fault] = []
        self.limits: list[Limit] = []
        self._connections = itertools.count(1)
        # Counts resets, so a request held by a latency fault can tell that its test is over.
        self.generation = 0

    def next_connection_id(self) -> int:
        with self.lock:
            return next(self._connections)

    def reset(self) -> None:
        with self.lock:
            self.journal.clear()
            self.faults.clear()
            self.limits.clear()
            self.generation += 1

    def record(self, entry: dict) -> dict:
        with self.lock:
            self.journal.append(entry)
        return entry

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not path.startswith(fault.path_prefix) or fault.count == 0:
                    continue
                if fault.failure_rate and random.random() >= fault.failure_rate:  # noqa: S311
                    return None
                if fault.count is not None:
                    fault.count -= 1
                return fault
        return None

    def check_limit(self, path: str) -> tuple[Limit, float | None] | None:
        with self.lock:
            for limit in self.limits:
                if path.startswith(limit.path_prefix):
                    return limit, limit.admit(time.time())
        return None
