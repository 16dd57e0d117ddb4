"""The limiter, cool-downs and the breaker state machine, on the database store and on Redis
(skipped without REDIS_URL; CI's second run sets it). Time is a made-up clock."""

import pytest

from integrations.limits.stores import DatabaseStore, Quota
from integrations.models import CircuitBreaker, RateLimitWindow

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.0


BREAKER = ("trello", "eu")


def acquire(store, quotas, customer="1", *, now):
    """The wait the rate limit imposes while the breaker is closed (None: granted)."""
    return store.admit(quotas, customer=customer, now=now, breaker=BREAKER, probe_lease=10.0).wait


def granted_times(store, quota, times, customer="1"):
    return [t for t in times if acquire(store, [quota], customer, now=t) is None]


def test_no_window_ever_carries_more_than_the_rate(store):
    """A fixed-window counter would let 2R through around a boundary; a sliding window never
    lets any window of S seconds carry more than R."""
    quota = Quota("k", rate=5, window=1.0)
    # Quiet, then a burst just before a second boundary and another just after it.
    times = [T0 + 0.95 + i * 0.01 for i in range(10)] + [T0 + 1.0 + i * 0.01 for i in range(10)]
    times += [T0 + 1.5 + i * 0.05 for i in range(60)]
    sent = granted_times(store, quota, times)
    assert len(sent[:5]) == 5 and sent[4] < T0 + 1.0  # the first 5 of the burst go
    for start in sent:
        assert sum(start <= t < start + 1.0 for t in sent) <= 5
    # Capacity is used once it frees: 5 more as soon as the first burst leaves the window.
    assert sent[5] == pytest.approx(T0 + 1.95, abs=0.051)


def test_a_refusal_says_when_capacity_frees(store):
    quota = Quota("k", rate=2, window=10.0)
    assert granted_times(store, quota, [T0, T0 + 1]) == [T0, T0 + 1]
    assert acquire(store, [quota], "1", now=T0 + 2) == pytest.approx(8.0)


def test_deferred_work_is_spread_per_customer(store):
    """A backlog is scheduled at the allowed rate, and another customer is not put behind it."""
    quota = Quota("k", rate=2, window=1.0)
    granted_times(store, quota, [T0, T0])
    waits = [acquire(store, [quota], "big", now=T0 + 0.1) for _ in range(4)]
    assert waits == pytest.approx([0.9, 1.4, 1.9, 2.4])
    assert acquire(store, [quota], "small", now=T0 + 0.1) == pytest.approx(0.9)


def test_a_backlog_leaves_part_of_the_rate_to_fresh_work(store):
    quota = Quota("k", rate=4, window=1.0, backlog_share=0.5)
    granted_times(store, quota, [T0] * 4)
    waits = [acquire(store, [quota], "big", now=T0) for _ in range(3)]
    assert waits == pytest.approx([1.0, 1.5, 2.0])  # 2 per second, not 4


def test_several_quotas_are_taken_together_or_not_at_all(store):
    token_a, token_b = Quota("token-a", 10, 1.0), Quota("token-b", 10, 1.0)
    shared_key = Quota("app-key", 2, 1.0)
    assert acquire(store, [token_a, shared_key], "1", now=T0) is None
    assert acquire(store, [token_b, shared_key], "1", now=T0) is None
    # The shared key is spent: token-b is refused and not charged for the refused send.
    assert acquire(store, [token_b, shared_key], "1", now=T0) is not None
    assert granted_times(store, token_b, [T0 + 0.1] * 10) == [T0 + 0.1] * 9


def test_cool_down_holds_every_send_on_the_scope(store):
    quota = Quota("k", rate=100, window=1.0)
    store.cool_down(["k"], until=T0 + 5)
    assert acquire(store, [quota], "1", now=T0) == pytest.approx(5.0)
    assert acquire(store, [quota], "2", now=T0 + 4.9) == pytest.approx(0.1)
    # A shorter cool-down never cuts a longer one short.
    store.cool_down(["k"], until=T0 + 1)
    assert acquire(store, [quota], "3", now=T0 + 2) == pytest.approx(3.0)
    assert acquire(store, [quota], "1", now=T0 + 5) is None


# -- breaker ------------------------------------------------------------------------------------


def fail(store, delivery_id, now, threshold=3, cool_off=30.0):
    return store.breaker_record(
        "trello",
        "eu",
        ok=False,
        delivery_id=delivery_id,
        threshold=threshold,
        cool_off=cool_off,
        now=now,
        error="HTTP 503",
    )


def succeed(store, now):
    return store.breaker_record(
        "trello", "eu", ok=True, delivery_id=0, threshold=3, cool_off=30.0, now=now
    )


def allow(store, now):
    return store.admit([], customer="1", now=now, breaker=BREAKER, probe_lease=10.0)


def test_one_deliverys_retries_alone_never_open_the_breaker(store):
    assert [fail(store, 1, T0 + n) for n in range(10)] == [None] * 10
    assert allow(store, T0 + 11).wait is None


def test_breaker_opens_after_distinct_failures_and_probes_after_the_cool_off(store):
    assert fail(store, 1, T0) is None
    assert fail(store, 2, T0) is None
    assert fail(store, 3, T0) == "open"
    row = CircuitBreaker.objects.get(provider_key="trello", region="eu")
    assert (row.state, row.failing_deliveries, row.last_error) == ("open", [1, 2, 3], "HTTP 503")
    assert allow(store, T0 + 10).wait == pytest.approx(20.0)
    assert fail(store, 4, T0 + 10) is None  # late results of calls already in flight
    probe = allow(store, T0 + 30)
    assert (probe.wait, probe.probe) == (None, True)
    assert CircuitBreaker.objects.get(provider_key="trello", region="eu").state == "half_open"
    assert allow(store, T0 + 31).wait == pytest.approx(9.0)  # one probe at a time
    assert fail(store, 5, T0 + 32) == "open"  # the probe failed: another cool-off
    assert allow(store, T0 + 40).wait == pytest.approx(22.0)
    assert allow(store, T0 + 62).probe
    assert succeed(store, T0 + 62.5) == "closed"
    assert allow(store, T0 + 63).wait is None
    row = CircuitBreaker.objects.get(provider_key="trello", region="eu")
    assert (row.state, row.failing_deliveries, row.open_until) == ("closed", [], None)


def test_a_lost_probe_is_replaced_after_its_lease(store):
    for delivery_id in (1, 2, 3):
        fail(store, delivery_id, T0)
    assert allow(store, T0 + 30).probe
    assert allow(store, T0 + 40).probe  # the first probe's worker never reported


def test_a_success_ends_the_run_of_failures(store):
    fail(store, 1, T0)
    fail(store, 2, T0)
    assert succeed(store, T0 + 1) is None  # closed stays closed, but the run starts over
    assert fail(store, 3, T0 + 2) is None
    assert fail(store, 4, T0 + 2) is None
    assert fail(store, 5, T0 + 2) == "open"


def test_a_send_held_by_the_breaker_takes_no_rate_limit_slot_and_no_probe_is_lost(store):
    quota = Quota("k", rate=1, window=40.0)
    for delivery_id in (1, 2, 3):
        fail(store, delivery_id, T0)
    held = store.admit([quota], customer="1", now=T0 + 1, breaker=BREAKER, probe_lease=10.0)
    assert (held.wait, held.cause) == (pytest.approx(29.0), "breaker")
    # The held send took no slot: a send on the same quota behind a closed breaker gets it.
    elsewhere = store.admit(
        [quota], customer="1", now=T0 + 2, breaker=("miro", "eu"), probe_lease=10
    )
    assert elsewhere.wait is None
    # After the cool-off (30 s), a send the rate limit refuses does not become the probe...
    refused = store.admit([quota], customer="1", now=T0 + 30, breaker=BREAKER, probe_lease=10.0)
    assert refused.cause == "rate"
    assert CircuitBreaker.objects.get(provider_key="trello", region="eu").state == "open"
    # ...the first one it admits does.
    admitted = store.admit([quota], customer="1", now=T0 + 43, breaker=BREAKER, probe_lease=10.0)
    assert (admitted.wait, admitted.probe) == (None, True)


# -- slots taken several at a time ---------------------------------------------------------------


def take(store, quota, count, *, now, horizon=0.1, customer="1"):
    return store.admit(
        [quota],
        customer=customer,
        now=now,
        breaker=BREAKER,
        probe_lease=10.0,
        count=count,
        horizon=horizon,
    )


def test_slots_taken_together_count_until_the_end_of_their_horizon(store):
    quota = Quota("k", rate=5, window=1.0)
    assert take(store, quota, 3, now=T0).granted == 3
    assert take(store, quota, 9, now=T0).granted == 2  # only what the window has room for
    assert take(store, quota, 1, now=T0 + 0.5).wait == pytest.approx(0.6)
    # Stamped at T0 + 0.1, the latest they may be used, they still fill the window at T0 + 1.05.
    # (Another customer: the refusal above booked customer 1's next deferred slot.)
    assert take(store, quota, 1, now=T0 + 1.05, customer="2").wait == pytest.approx(0.05)
    assert take(store, quota, 1, now=T0 + 1.1, customer="3").granted == 1


def test_a_single_slot_counts_from_now(store):
    quota = Quota("k", rate=1, window=1.0)
    assert take(store, quota, 1, now=T0).granted == 1
    assert take(store, quota, 1, now=T0 + 1.0).granted == 1


def test_the_probe_gets_one_slot_however_many_are_asked_for(store):
    quota = Quota("k", rate=100, window=1.0)
    for delivery_id in (1, 2, 3):
        fail(store, delivery_id, T0)
    probe = take(store, quota, 10, now=T0 + 30)
    assert (probe.probe, probe.granted) == (True, 1)


def recheck(store, quota, now):
    return store.recheck([quota], breaker=BREAKER, now=now)


def test_recheck_stops_granted_slots_after_a_cool_down_or_a_breaker_failure(store):
    quota = Quota("k", rate=100, window=1.0)
    assert (recheck(store, quota, T0).wait, recheck(store, quota, T0).clean) == (None, True)
    fail(store, 1, T0)
    assert (recheck(store, quota, T0).wait, recheck(store, quota, T0).clean) == (None, False)
    store.cool_down(["k"], until=T0 + 5)
    assert (recheck(store, quota, T0 + 1).wait, recheck(store, quota, T0 + 1).cause) == (
        pytest.approx(4.0),
        "rate",
    )
    assert recheck(store, quota, T0 + 5).wait is None
    fail(store, 2, T0 + 5)
    fail(store, 3, T0 + 5)
    assert recheck(store, quota, T0 + 6).cause == "breaker"


def test_recheck_writes_nothing(store):
    assert recheck(store, Quota("unseen", rate=1, window=1.0), T0).wait is None
    if isinstance(store, DatabaseStore):
        assert not RateLimitWindow.objects.exists()
        assert not CircuitBreaker.objects.exists()
    else:
        assert not list(store.redis.scan_iter("switchyard:limits:*"))
