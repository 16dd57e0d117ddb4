"""Properties of the retry policy (``integrations.deliveries.retry``) for any numbers at all: the
delays it returns become ``timedelta(seconds=…)`` and rate-limit cool-downs, so a NaN, an
infinity or an OverflowError there would break settling a delivery."""

import math
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from integrations.deliveries.retry import (
    MAX_DELAY_SECONDS,
    RETRYABLE_OUTCOMES,
    RetryPolicy,
    decide_retry,
    provider_delay,
)

any_float = st.floats() | st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 1e308, 5e-324])
any_seconds = any_float | st.integers(-(10**6), 10**6)
attempts = st.integers() | st.integers(-3, 60)
outcomes = st.sampled_from(["success", "retryable", "rate_limited", "terminal", "auth_failed"])
policies = st.builds(
    RetryPolicy,
    base_seconds=any_seconds,
    cap_seconds=any_seconds,
    max_attempts=st.integers(1, 50),
    max_delay_seconds=any_seconds,
)
# random.random's range: [0, 1).
fractions = st.floats(0, 1, exclude_max=True)


def _bound(value: float) -> float:
    """What a policy limit allows: itself when it is a number of seconds, else no limit."""
    return max(value, 0.0) if not math.isnan(value) else math.inf


@given(
    policy=policies,
    attempt=attempts,
    attempt_limit=attempts,
    outcome=outcomes,
    retry_after=st.none() | any_seconds,
    fraction=fractions,
)
def test_a_decision_is_a_usable_delay_within_every_limit(
    policy, attempt, attempt_limit, outcome, retry_after, fraction
):
    decision = decide_retry(
        policy=policy,
        attempt=attempt,
        attempt_limit=attempt_limit,
        outcome=outcome,
        retry_after=retry_after,
        random_fraction=lambda: fraction,
    )

    retries = outcome in RETRYABLE_OUTCOMES and attempt < attempt_limit
    assert decision.retry is retries
    assert decision.reason
    if not retries:
        assert decision.delay_seconds is None
        return
    delay = decision.delay_seconds
    assert math.isfinite(delay)
    assert 0 <= delay <= min(MAX_DELAY_SECONDS, _bound(policy.max_delay_seconds))
    if retry_after is None or math.isnan(retry_after):
        assert delay <= _bound(policy.cap_seconds)
    timedelta(seconds=delay)


@given(retry_after=any_seconds, attempt=st.integers(1, 60))
def test_a_usable_retry_after_wins_clamped_to_the_ceiling(retry_after, attempt):
    policy = RetryPolicy()
    decision = decide_retry(
        policy=policy,
        attempt=attempt,
        attempt_limit=100,
        outcome="rate_limited",
        retry_after=retry_after,
        random_fraction=lambda: 0.5,
    )
    if not math.isnan(retry_after):
        assert decision.delay_seconds == min(max(retry_after, 0.0), policy.max_delay_seconds)


@given(seconds=any_seconds, ceiling=any_seconds)
def test_provider_delay_is_clamped_and_finite(seconds, ceiling):
    delay = provider_delay(seconds, ceiling=ceiling)
    assert math.isfinite(delay)
    assert 0 <= delay <= min(MAX_DELAY_SECONDS, _bound(ceiling))
    if not math.isnan(seconds):
        assert delay == min(max(seconds, 0.0), MAX_DELAY_SECONDS, _bound(ceiling))


@given(policy=policies, attempt=st.integers(1, 10**6), fraction=fractions)
def test_the_backoff_window_never_shrinks_as_attempts_grow(policy, attempt, fraction):
    def delay(n: int) -> float:
        return decide_retry(
            policy=policy,
            attempt=n,
            attempt_limit=10**7,
            outcome="retryable",
            random_fraction=lambda: fraction,
        ).delay_seconds

    assert delay(attempt) <= delay(attempt + 1)
