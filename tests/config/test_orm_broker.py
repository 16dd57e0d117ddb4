"""config/orm_broker: the embedded default's broker claims tasks as django-q2's ORM broker does
and polls briskly only while tasks keep coming."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ

from config import orm_broker
from config.orm_broker import BRISK_POLL_SECONDS, BRISK_SECONDS, BriskORM

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    """The broker's monotonic clock, set by the test, and the sleeps it asked for."""
    state = {"now": 1000.0, "slept": []}
    monkeypatch.setattr(orm_broker, "monotonic", lambda: state["now"])
    monkeypatch.setattr(orm_broker, "sleep", state["slept"].append)
    return state


def test_the_embedded_default_uses_it():
    if "orm" not in settings.Q_CLUSTER:
        pytest.skip("this run's broker is Redis")
    assert isinstance(get_broker(), BriskORM)


def test_a_task_is_taken_once_and_a_locked_one_not_at_all(clock):
    broker = BriskORM(list_key="brisk")
    first = broker.enqueue("payload-1")
    OrmQ.objects.create(key="brisk", payload="held", lock=timezone.now() + timedelta(hours=1))

    assert broker.dequeue() == [(first, "payload-1")]
    assert OrmQ.objects.get(pk=first).lock > timezone.now()  # leased until the retry time
    assert broker.dequeue() is None
    assert clock["slept"] == [BRISK_POLL_SECONDS]


def test_an_empty_queue_is_polled_briskly_only_while_tasks_keep_coming(clock):
    broker = BriskORM(list_key="brisk")
    assert broker.dequeue() is None  # idle from the start: the configured poll
    broker.enqueue("payload")
    assert broker.dequeue()
    clock["now"] += BRISK_SECONDS / 2
    assert broker.dequeue() is None
    clock["now"] += BRISK_SECONDS
    assert broker.dequeue() is None
    assert clock["slept"] == [Conf.POLL, BRISK_POLL_SECONDS, Conf.POLL]
    assert BRISK_POLL_SECONDS < Conf.POLL
