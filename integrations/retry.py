"""The retry policy: one pure function, table-tested (tests/integrations/test_retry_policy.py).

Full-jitter exponential backoff (AWS "Exponential Backoff And Jitter"): the n-th retry waits a
uniformly random time in [0, min(cap, base * 2**(n-1))]. A delay the provider asked for
(Retry-After, a rate-limit reset) wins over the computed one, clamped to ``max_delay_seconds``.
"""

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ("RetryDecision", "RetryPolicy", "decide_retry", "policy_for")

RETRYABLE_OUTCOMES = frozenset({"retryable", "rate_limited"})


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = 3600.0
    max_attempts: int = 10
    # Upper bound on a provider-requested delay, so a bogus Retry-After cannot park work for days.
    max_delay_seconds: float = 3600.0


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_seconds: float | None
    reason: str


def policy_for(retry_settings: Mapping) -> RetryPolicy:
    """A policy from a provider's retry settings (its defaults under ``config.retry``)."""
    known = ("base_seconds", "cap_seconds", "max_attempts")
    return RetryPolicy(**{name: retry_settings[name] for name in known if name in retry_settings})


def decide_retry(
    *,
    policy: RetryPolicy,
    attempt: int,
    attempt_limit: int,
    outcome: str,
    retry_after: float | None = None,
    random_fraction: Callable[[], float] = random.random,
) -> RetryDecision:
    """Decide what follows attempt number ``attempt`` (1-based) that ended with ``outcome``.

    ``attempt_limit`` is the attempt number after which retryable failures dead-letter (the
    policy's max_attempts, raised when an operator retries a dead letter)."""
    if outcome == "success":
        return RetryDecision(False, None, "succeeded")
    if outcome not in RETRYABLE_OUTCOMES:
        return RetryDecision(False, None, f"non-retryable outcome: {outcome}")
    if attempt >= attempt_limit:
        return RetryDecision(False, None, f"gave up after {attempt} attempts")
    if retry_after is not None:
        delay = min(max(retry_after, 0.0), policy.max_delay_seconds)
        return RetryDecision(True, delay, f"provider asked to wait {retry_after:g} s")
    ceiling = min(policy.cap_seconds, policy.base_seconds * 2 ** (attempt - 1))
    return RetryDecision(True, random_fraction() * ceiling, f"backoff up to {ceiling:g} s")
