"""The dispatcher loop behind ``manage.py dispatch``: periodic steps run on one schedule.

Later steps (outbox relay, lease recovery, credential grace expiry) register here, so the loop
itself knows nothing about what it drives.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections
from django_q.tasks import async_task

from config.shutdown import StopRequest
from integrations.heartbeats import heartbeat_purge_stale, heartbeat_record

__all__ = ("Dispatcher", "PeriodicStep", "default_steps")

logger = logging.getLogger(__name__)


@dataclass
class PeriodicStep:
    name: str
    every_seconds: float
    run: Callable[[], object]
    next_run_at: float = field(default=0.0)


def _probe_workers() -> None:
    heartbeat_record(role="dispatcher")
    async_task("integrations.tasks.worker_heartbeat", q_options={"task_name": "worker_heartbeat"})


def default_steps() -> list[PeriodicStep]:
    from credentials.services import credential_versions_expire
    from integrations.deliveries import services as deliveries
    from webhooks import services as webhooks

    heartbeat = settings.SWITCHYARD_HEARTBEAT_SECONDS
    return [
        # Every pass: due work reaches a worker within one dispatch interval of its time.
        PeriodicStep("relay_due_deliveries", 0, deliveries.deliveries_relay_due),
        # Every pass as well: leases are short and renewed, so an expired one is a dead worker.
        PeriodicStep("recover_expired_leases", 0, deliveries.deliveries_recover_leases),
        PeriodicStep("heartbeat", heartbeat, _probe_workers),
        PeriodicStep("purge_idempotency_keys", 600, deliveries.idempotency_keys_purge),
        PeriodicStep("purge_heartbeats", 3600, heartbeat_purge_stale),
        PeriodicStep("expire_credential_versions", 30, credential_versions_expire),
        PeriodicStep("relay_due_inbound_events", 0, webhooks.inbound_events_relay_due),
        PeriodicStep("recover_expired_inbound_leases", 0, webhooks.inbound_events_recover_leases),
    ]


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
                step.run()
            except Exception:
                # One failing step (a locked database, a broker blip) must not stop the others.
                logger.exception("dispatch.step_failed step=%s", step.name)

    def run_forever(self) -> None:
        logger.info("dispatch.started steps=%s", ",".join(s.name for s in self.steps))
        while not self._stop.is_set():
            self.run_due_steps()
            # A long-lived loop must drop connections the database closed or that errored.
            close_old_connections()
            self._stop.wait(self.interval_seconds)
        logger.info("dispatch.stopped")
