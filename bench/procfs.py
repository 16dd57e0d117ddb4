"""What a bench's processes use, read from Linux /proc: a process tree's resident memory (sampled
for its peak) and CPU time, and the CPU time of one database's PostgreSQL backends. Where the
CPU of a phase went is how a bench tells a ceiling of the machine from a cost of the code."""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

__all__ = ("PeakRss", "cpu_ms_each", "cpu_seconds_by_role", "tree_rss_bytes")

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """A process and all its live descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found.append(current)
        pending += [int(child) for child in children]
    return found


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    total = 0
    for current in _tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _cpu_seconds(pid: int) -> float:
    """User and system time of one process (its threads included), 0 once it has gone."""
    try:
        # The fields after the command name, which may itself hold spaces and parentheses.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def _backends(database: str) -> list[int]:
    """PostgreSQL backends serving ``database`` (their title: ``postgres: user db host ...``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry.name))
    return found


def cpu_seconds_by_role(roles: dict[str, int], database: str | None = None) -> dict[str, float]:
    """CPU seconds so far of each role's process tree (``roles``: name → root pid), of
    ``database``'s PostgreSQL backends as ``database`` when given, and of this process as
    ``client``. Diff two readings for a phase; a process that exits meanwhile drops out."""
    used = {name: sum(_cpu_seconds(p) for p in _tree(pid)) for name, pid in roles.items()}
    if database:
        used["database"] = sum(_cpu_seconds(pid) for pid in _backends(database))
    own = resource.getrusage(resource.RUSAGE_SELF)
    used["client"] = own.ru_utime + own.ru_stime
    return used


def cpu_ms_each(before: dict[str, float], after: dict[str, float], count: int) -> dict:
    """Milliseconds of CPU each role spent per unit of work (``count`` of them) between two
    ``cpu_seconds_by_role`` readings."""
    return {role: (after[role] - before[role]) * 1000 / max(1, count) for role in after}


class PeakRss:
    """Samples the resident memory of a process tree in the background; ``peak`` in bytes."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            time.sleep(0.2)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak
