"""The retry policy: one pure function, table-tested (tests/integrations/deliveries/
test_retry_policy.py) and property-tested for any numbers (tests/property/test_retry_policy.py).

Full-jitter exponential backoff (AWS "Exponential Backoff And Jitter"): the n-th retry waits a
uniformly random time in [0, min(cap, max_delay, base * 2**(n-1))]. A delay the provider asked
for (Retry-After, a rate-limit reset) wins over the computed one, clamped to ``max_delay_seconds``.
Every delay is a finite number of seconds from 0 to MAX_DELAY_SECONDS, whatever the inputs.
"""

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = (
    "MAX_ATTEMPTS",
    "MAX_DELAY_SECONDS",
    "RetryDecision",
    "RetryPolicy",
    "decide_retry",
    "policy_for",
    "provider_delay",
)

RETRYABLE_OUTCOMES = frozenset({"retryable", "rate_limited"})
# Nothing waits longer than this for its next try: neither a configured backoff nor a delay a
# provider asks for (a bogus Retry-After of a day would otherwise park work for a day).
MAX_DELAY_SECONDS = 3600.0
# The most attempts an integration's config.retry may allow.
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = MAX_DELAY_SECONDS
    max_attempts: int = 10
    max_delay_seconds: float = MAX_DELAY_SECONDS


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_seconds: float | None
    reason: str


def policy_for(retry_settings: Mapping) -> RetryPolicy:
    """A policy from a provider's retry settings (its defaults under ``config.retry``)."""
    known = ("base_seconds", "cap_seconds", "max_attempts")
    return RetryPolicy(**{name: retry_settings[name] for name in known if name in retry_settings})


def provider_delay(seconds: float, *, ceiling: float = MAX_DELAY_SECONDS) -> float:
    """A delay the provider asked for (Retry-After), as the platform honours it: 0 to
    ``ceiling`` (and never beyond MAX_DELAY_SECONDS); NaN counts as 0. Retries and the rate
    limiter's cool-down both wait this long."""
    return _within(seconds, _limit(ceiling))


def _limit(*limits: float) -> float:
    """The tightest of ``limits`` and MAX_DELAY_SECONDS, at least 0; a NaN limit is none."""
    return max(min([MAX_DELAY_SECONDS, *(x for x in limits if not math.isnan(x))]), 0.0)


def _within(seconds: float, limit: float) -> float:
    # `not seconds > 0` also holds for NaN, which compares false with everything.
    return 0.0 if not seconds > 0 else min(seconds, limit)


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
    # A NaN Retry-After asks for nothing readable; the backoff applies as if none was sent.
    if retry_after is not None and not math.isnan(retry_after):
        delay = provider_delay(retry_after, ceiling=policy.max_delay_seconds)
        return RetryDecision(True, delay, f"provider asked to wait {retry_after:g} s")
    # Attempts past 1024 count as 1024: 2.0 ** 1024 overflows a float, and any base a person
    # would configure has reached the cap long before.
    growth = 2.0 ** (min(max(attempt, 1), 1024) - 1)
    ceiling = _within(
        policy.base_seconds * growth, _limit(policy.cap_seconds, policy.max_delay_seconds)
    )
    return RetryDecision(True, random_fraction() * ceiling, f"backoff up to {ceiling:g} s")
