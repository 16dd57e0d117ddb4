"""The §11 metrics: attempt duration and count, accepted → succeeded latency and inbound
processing latency recorded where the work happens; the breaker gauge on web's /metrics.
Read back through the text exposition, as Prometheus reads it."""

import pytest
import responses
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from config.metrics_recorded import recorded
from integrations.models import CircuitBreaker
from tests.integrations.deliveries.conftest import CARD_URL
from tests.integrations.limits.test_engine import CARD_JSON, attempt, create

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(name: str, **labels) -> float:
    return samples(generate_latest(recorded).decode()).get(
        (name, tuple(sorted(labels.items()))), 0.0
    )


@responses.activate
def test_attempts_are_counted_timed_and_successes_give_their_latency(trello_credential):
    responses.put(CARD_URL, status=503, body="down")
    responses.put(CARD_URL, json=CARD_JSON)
    ok = {"provider": "trello", "outcome": "success"}
    retry = {"provider": "trello", "outcome": "retryable"}
    before = {
        "attempts_ok": value("switchyard_delivery_attempts_total", **ok),
        "attempts_retry": value("switchyard_delivery_attempts_total", **retry),
        "durations": value("switchyard_delivery_attempt_duration_seconds_count", **ok),
        "latency": value("switchyard_delivery_latency_seconds_count", provider="trello"),
    }
    delivery = create()
    assert attempt(delivery) == "pending"
    assert attempt(delivery) == "succeeded"
    assert value("switchyard_delivery_attempts_total", **ok) == before["attempts_ok"] + 1
    assert value("switchyard_delivery_attempts_total", **retry) == before["attempts_retry"] + 1
    count = value("switchyard_delivery_attempt_duration_seconds_count", **ok)
    assert count == before["durations"] + 1
    latency = value("switchyard_delivery_latency_seconds_count", provider="trello")
    assert latency == before["latency"] + 1
    assert value("switchyard_delivery_latency_seconds_sum", provider="trello") > 0


def test_processing_an_inbound_event_records_its_latency(make_endpoint, post_webhook):
    before = value("switchyard_inbound_processing_latency_seconds_count", provider="trello")
    assert post_webhook(make_endpoint("trello")).status_code == 202
    after = value("switchyard_inbound_processing_latency_seconds_count", provider="trello")
    assert after == before + 1


def test_web_metrics_show_each_breaker_open_or_not(client):
    CircuitBreaker.objects.create(provider_key="trello", region="eu", state="open")
    CircuitBreaker.objects.create(provider_key="miro", region="us", state="closed")
    found = samples(client.get("/metrics").content.decode())
    assert found[("switchyard_breaker_open", (("provider", "trello"), ("region", "eu")))] == 1
    assert found[("switchyard_breaker_open", (("provider", "miro"), ("region", "us")))] == 0
