"""django-q2's ORM broker (the embedded default's queue), polling briskly while tasks come."""

from time import monotonic, sleep

from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

__all__ = ("BriskORM",)

# While a task was found within BRISK_SECONDS, an empty queue is read again after
# BRISK_POLL_SECONDS rather than Q_CLUSTER["poll"]: a task of a steady stream then waits a few
# milliseconds for the pusher, not half a poll, and an idle queue costs what it did.
BRISK_SECONDS = 2.0
BRISK_POLL_SECONDS = 0.01


class BriskORM(ORM):
    """The ORM broker whose pusher polls every BRISK_POLL_SECONDS while tasks keep coming and
    every Q_CLUSTER["poll"] once the queue has been empty for BRISK_SECONDS. Claims as the ORM
    broker does: a task's lock moves only if it still holds the value read (another cluster
    may have taken it)."""

    _last_found = float("-inf")

    def dequeue(self):
        queue = self.get_connection()
        found = []
        for task in queue.filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]:
            if queue.filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                found.append((task.pk, task.payload))
        now = monotonic()
        if found:
            self._last_found = now
            return found
        brisk = now - self._last_found < BRISK_SECONDS
        sleep(BRISK_POLL_SECONDS if brisk else Conf.POLL)
        return None
