import pytest

from integrations.deliveries.retry import RetryPolicy, decide_retry, policy_for

POLICY = RetryPolicy(base_seconds=2, cap_seconds=3600, max_attempts=10, max_delay_seconds=3600)


def top(fraction=1.0):
    return lambda: fraction


@pytest.mark.parametrize(
    ("outcome", "attempt", "retry_after", "fraction", "expected"),
    [
        # outcome        attempt retry_after fraction  (retry, delay)
        ("success", 1, None, 1.0, (False, None)),
        ("terminal", 1, None, 1.0, (False, None)),
        ("auth_failed", 1, None, 1.0, (False, None)),
        ("retryable", 1, None, 1.0, (True, 2.0)),
        ("retryable", 2, None, 1.0, (True, 4.0)),
        ("retryable", 3, None, 1.0, (True, 8.0)),
        ("retryable", 3, None, 0.5, (True, 4.0)),
        ("retryable", 3, None, 0.0, (True, 0.0)),
        ("retryable", 9, None, 1.0, (True, 512.0)),
        ("retryable", 9, None, 0.25, (True, 128.0)),
        ("retryable", 10, None, 1.0, (False, None)),  # attempt limit reached
        ("rate_limited", 1, 5.0, 0.1, (True, 5.0)),  # Retry-After wins over jitter
        ("rate_limited", 1, None, 1.0, (True, 2.0)),
        ("retryable", 4, 30.0, 1.0, (True, 30.0)),  # Retry-After on a 503
        ("rate_limited", 1, 86400.0, 1.0, (True, 3600.0)),  # clamped
        ("rate_limited", 1, -3.0, 1.0, (True, 0.0)),  # clamped at zero
        ("rate_limited", 10, 5.0, 1.0, (False, None)),  # limit still applies
    ],
)
def test_decide_retry(outcome, attempt, retry_after, fraction, expected):
    decision = decide_retry(
        policy=POLICY,
        attempt=attempt,
        attempt_limit=POLICY.max_attempts,
        outcome=outcome,
        retry_after=retry_after,
        random_fraction=top(fraction),
    )
    assert (decision.retry, decision.delay_seconds) == expected
    assert decision.reason


def test_backoff_is_capped():
    policy = RetryPolicy(base_seconds=2, cap_seconds=60, max_attempts=50)
    decision = decide_retry(
        policy=policy, attempt=30, attempt_limit=50, outcome="retryable", random_fraction=top()
    )
    assert decision.delay_seconds == 60


def test_full_jitter_spreads_over_the_whole_window():
    import random

    rng = random.Random(7)
    delays = [
        decide_retry(
            policy=POLICY,
            attempt=5,
            attempt_limit=10,
            outcome="retryable",
            random_fraction=rng.random,
        ).delay_seconds
        for _ in range(2000)
    ]
    assert 0 <= min(delays) < 2 and 30 < max(delays) <= 32
    assert 14 < sum(delays) / len(delays) < 18


def test_manual_retry_raises_the_attempt_limit():
    decision = decide_retry(
        policy=POLICY, attempt=12, attempt_limit=20, outcome="retryable", random_fraction=top()
    )
    assert decision.retry


def test_policy_from_provider_settings_and_override():
    policy = policy_for({"base_seconds": 1, "cap_seconds": 30, "max_attempts": 3, "extra": 1})
    assert policy == RetryPolicy(base_seconds=1, cap_seconds=30, max_attempts=3)
    assert policy_for({}) == RetryPolicy()
