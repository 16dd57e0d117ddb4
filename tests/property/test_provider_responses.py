"""Properties of how providers classify an unsuccessful answer: whatever status, headers and
body a server sends, ``classify_error`` returns an outcome, and any delay it asks for is a
finite number of seconds from 0 (it becomes a retry time and a rate-limit cool-down)."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.constants import (
    HEADER_MIRO_RATELIMIT_RESET,
    HEADER_RETRY_AFTER,
    HEADER_SHOPIFY_CALL_LIMIT,
)
from integrations.providers.types import Outcome, ProviderResponse
from integrations.registry import providers
from tests.property.strategies import header_names, header_values, json_values

PROVIDERS = [pytest.param(provider, id=provider.key) for provider in providers()]

# Numbers as servers spell them; float() also reads the ones no clock can use.
unusable_numbers = st.sampled_from(["nan", "inf", "-inf", "1e999"])
numbers = st.one_of(
    st.floats().map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["NaN", "0x10", " 5 ", "1_000", "-0"]),
)
http_dates = st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT"))
delay_values = unusable_numbers | numbers | http_dates | header_values


def _headers(values: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    """Headers that may carry a delay (each with one of ``values``), among others."""
    delays = st.fixed_dictionaries(
        {},
        optional={
            name: values
            for name in (HEADER_RETRY_AFTER, HEADER_MIRO_RATELIMIT_RESET, HEADER_SHOPIFY_CALL_LIMIT)
        },
    )
    others = st.dictionaries(header_names, header_values, max_size=3)
    return st.builds(lambda delays, others: {**others, **delays}, delays, others)


bodies = st.binary(max_size=200) | json_values.map(lambda value: json.dumps(value).encode())


@pytest.mark.parametrize("provider", PROVIDERS)
@given(
    status=st.sampled_from([429, 503, 408, 425]) | st.integers(300, 599),
    headers=_headers(delay_values),
    body=bodies,
    configured_delay=st.none() | st.floats(0, 3600),
)
def test_an_error_answer_is_classified_with_a_usable_delay(
    provider, status, headers, body, configured_delay
):
    config = {} if configured_delay is None else {"rate_limited_delay_seconds": configured_delay}

    interpretation = provider.classify_error(ProviderResponse(status, headers, body), config)

    assert interpretation.outcome in Outcome.values
    assert interpretation.outcome != Outcome.SUCCESS
    assert interpretation.error
    delay = interpretation.retry_after
    assert delay is None or (math.isfinite(delay) and delay >= 0)


@pytest.mark.parametrize("provider", PROVIDERS)
@given(headers=_headers(unusable_numbers | delay_values), body=bodies)
def test_a_rate_limited_answer_asks_for_a_usable_delay(provider, headers, body):
    interpretation = provider.classify_error(ProviderResponse(429, headers, body), {})

    assert interpretation.outcome == Outcome.RATE_LIMITED
    assert math.isfinite(interpretation.retry_after) and interpretation.retry_after >= 0
