"""``manage.py worker``: django-q2's task cluster with a stop that cannot hang.

django-q2's own ``qcluster`` has two stop problems:

- A SIGTERM sent to the whole process group (honcho does this, and so does systemd's default
  KillMode) also kills the sentinel, and it dies while waiting on the stop event. The main
  process's ``stop_event.set()`` then waits forever for that dead waiter to wake, until the
  process manager SIGKILLs everything.
- It stops the cluster from inside its signal handler (django-q2 issue #346).

This command forks the cluster with SIGTERM blocked, so only the main process acts on it. Its
handler only records the request (``config.shutdown``). The main thread then sets the stop event,
and django-q2 drains the cluster in its own order: the pusher stops, workers finish their task,
the monitor saves the results. Every process stays in one process group, so a process manager's
SIGKILL still reaches all of them.

The cost of the block: a worker stuck past its task timeout in code that never returns to Python
ignores the sentinel's SIGTERM (django-q2's SIGALRM timeout still ends ordinary tasks), and a
program a task starts inherits the block.
"""

import gc
import logging
import os
import shutil
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_q.cluster import Cluster

from config.metrics_recorded import metrics_serve, multiprocess_enable
from config.shutdown import StopRequest

logger = logging.getLogger(__name__)

# While no stop is requested, the main process checks this often that its sentinel still runs.
SENTINEL_CHECK_SECONDS = 1.0


class Command(BaseCommand):
    help = "Run the django-q2 task cluster (as qcluster does); stops cleanly on SIGTERM or SIGINT."

    def handle(self, *args, **options):
        metrics_dir = _metrics_start()
        try:
            self._run()
        finally:
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)

    def _run(self):
        stop = StopRequest()
        cluster = Cluster()
        # Cluster() installs django-q2's handlers; these replace them.
        stop.install()
        # The sentinel is forked inside start() and inherits the mask, and so does every process
        # it forks. A SIGTERM arriving meanwhile stays pending for the main process.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        # What is loaded by now lives as long as the processes: the workers' full collections
        # skip it, and its pages stay shared with the forks.
        gc.freeze()
        try:
            cluster.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        while not stop.wait(SENTINEL_CHECK_SECONDS):
            if not cluster.sentinel.is_alive():
                # Exit non-zero so the process manager restarts the worker.
                raise CommandError(
                    f"the cluster's sentinel exited with code {cluster.sentinel.exitcode}"
                )
        logger.info("worker.stopping signal=%s", _signal_name(stop.signum))
        cluster.stop()
        logger.info("worker.stopped")


def _signal_name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum is not None else "none"


def _metrics_start():
    """With SWITCHYARD_METRICS_PORT, serve the metrics every task process records (multiprocess
    mode, set before the cluster forks them); the directory is this worker's own."""
    if not settings.SWITCHYARD_METRICS_PORT:
        return None
    directory = settings.SWITCHYARD_METRICS_DIR / f"worker-{os.getpid()}"
    multiprocess_enable(directory)
    metrics_serve(
        settings.SWITCHYARD_METRICS_PORT,
        settings.SWITCHYARD_METRICS_BIND,
        multiprocess_dir=directory,
    )
    return directory
