"""The dispatcher loop behind ``manage.py dispatch``: periodic steps run on one schedule.

Each app adds its steps from its ``AppConfig.ready()`` (``step_add``: outbox relays, lease
recovery, credential grace expiry), so the loop knows nothing about what it drives and
imports no app.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from django.conf import settings
from django.db import close_old_connections

from config.metrics_recorded import DISPATCH_STEP_DURATION
from config.shutdown import StopRequest
from integrations.heartbeats import heartbeat_record
from integrations.outbox import task_enqueue

__all__ = (
    "Dispatcher",
    "PeriodicStep",
    "default_steps",
    "heartbeat_seconds",
    "step_add",
    "workers_probe",
)

logger = structlog.stdlib.get_logger(__name__)


@dataclass
class PeriodicStep:
    name: str
    every_seconds: float
    run: Callable[[], object]
    next_run_at: float = field(default=0.0)


# name → (interval in seconds, or a function reading it from settings when the loop starts; run)
_registered: dict[str, tuple[float | Callable[[], float], Callable[[], object]]] = {}


def step_add(name: str, every_seconds: float | Callable[[], float], run: Callable[[], object]):
    """Run ``run`` every ``every_seconds`` (0: every pass). Called from ``AppConfig.ready()``."""
    if name in _registered:
        raise RuntimeError(f"Dispatcher step '{name}' is added twice")
    _registered[name] = (every_seconds, run)


def default_steps() -> list[PeriodicStep]:
    """Fresh steps for one loop, in the order the apps added them."""
    return [
        PeriodicStep(name, every() if callable(every) else every, run)
        for name, (every, run) in _registered.items()
    ]


def workers_probe() -> None:
    """The dispatcher's heartbeat, and a task whose run is each worker's."""
    heartbeat_record(role="dispatcher")
    task_enqueue("integrations.tasks.worker_heartbeat", task_name="worker_heartbeat")


def heartbeat_seconds() -> float:
    return settings.SWITCHYARD_HEARTBEAT_SECONDS


class Dispatcher:
    def __init__(self, steps: list[PeriodicStep], interval_seconds: float):
        self.steps = steps
        self.interval_seconds = interval_seconds
        self._stop = StopRequest()

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        self._stop.install()

    def run_due_steps(self) -> None:
        now = time.monotonic()
        for step in self.steps:
            if now < step.next_run_at:
                continue
            step.next_run_at = now + step.every_seconds
            try:
                with DISPATCH_STEP_DURATION.labels(step.name).time():
                    step.run()
            except Exception:
                # One failing step (a locked database, a broker blip) must not stop the others.
                logger.exception("dispatch.step_failed", step=step.name)

    def run_forever(self) -> None:
        logger.info("dispatch.started", steps=[s.name for s in self.steps])
        while not self._stop.is_set():
            self.run_due_steps()
            # A long-lived loop must drop connections the database closed or that errored.
            close_old_connections()
            self._stop.wait(self.interval_seconds)
        logger.info("dispatch.stopped")
