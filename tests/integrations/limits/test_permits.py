"""SendPermits: a batch takes rate-limit slots several at a time (on whichever store the suite
runs), never more than its horizon can use, and stops using them at a cool-down."""

import types

import pytest

from integrations.limits import services
from integrations.limits.services import Deferral, Permit, SendPermits
from integrations.limits.stores import Quota, limit_store

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.0
QUOTA = Quota("trello:credential:1", rate=1000, window=1.2)


@pytest.fixture
def clock(monkeypatch):
    """A made-up clock for the permits; returns a one-item list to move it."""
    now = [T0]
    monkeypatch.setattr(services, "time", types.SimpleNamespace(time=lambda: now[0]))
    return now


@pytest.fixture
def asked(monkeypatch):
    """The ``count`` of every call to the store's ``admit``."""
    store = limit_store()
    counts = []
    admit = store.admit

    def spy(*args, **kwargs):
        counts.append(kwargs["count"])
        return admit(*args, **kwargs)

    monkeypatch.setattr(store, "admit", spy)
    return counts


def permit(permits, wanted, quota=QUOTA):
    return permits.permit(
        provider_key="trello", region="eu", quotas=[quota], customer_id=1, wanted=wanted
    )


def test_grants_double_while_they_are_used_and_never_exceed_what_is_wanted(clock, asked):
    permits = SendPermits()
    results = [permit(permits, wanted=15 - n) for n in range(15)]
    assert all(isinstance(result, Permit) for result in results)
    assert asked == [1, 2, 4, 8]


def test_a_grant_cut_short_by_its_horizon_is_not_renewed_larger(clock, asked, settings):
    settings.SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS = 0.2  # a horizon of 0.1 s
    permits = SendPermits()
    permit(permits, wanted=10)
    permit(permits, wanted=9)  # takes 2: this send's and one more
    clock[0] += 0.1  # the horizon is over: the spare slot may no longer be used
    permit(permits, wanted=8)
    assert asked == [1, 2, 1]


def test_without_a_margin_every_send_asks_for_its_own_slot(clock, asked, settings):
    settings.SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS = 0
    permits = SendPermits()
    for n in range(4):
        permit(permits, wanted=10 - n)
    assert asked == [1, 1, 1, 1]


def test_a_cool_down_stops_slots_already_granted(clock, asked):
    permits = SendPermits()
    permit(permits, wanted=10)
    permit(permits, wanted=9)  # one spare slot in hand
    limit_store().cool_down([QUOTA.key], until=T0 + 5)  # another worker got a 429
    deferral = permit(permits, wanted=8)
    assert isinstance(deferral, Deferral) and deferral.seconds == pytest.approx(5.0)
    assert asked == [1, 2, 1]  # it asked the store again, which refused


def test_the_rate_limit_still_binds_slots_taken_together(clock):
    permits = SendPermits()
    tight = Quota("trello:credential:2", rate=5, window=1.2)
    results = [permit(permits, wanted=20, quota=tight) for _ in range(8)]
    assert [isinstance(result, Permit) for result in results] == [True] * 5 + [False] * 3
