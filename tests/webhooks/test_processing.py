"""Processing from the stored row: ignored types, retries with the engine's policy, dead
letters, the dispatcher relay for lost tasks, and replay."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from integrations.outbox import Outbox
from tests.integrations.providers.helpers import fixture_bytes
from webhooks import services
from webhooks.models import InboundEvent
from webhooks.services import processing

pytestmark = pytest.mark.django_db


def test_unknown_trello_action_is_ignored_not_failed(make_endpoint, post_webhook):
    endpoint = make_endpoint("trello")
    response = post_webhook(endpoint, fixture_bytes("trello", "voteOnCard__basic"))
    assert response.status_code == 202
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.IGNORED
    assert event.error == ""


def _process(event_id: int) -> str | None:
    return services.inbound_events_process(event_ids=[event_id]).get(event_id)


def _stored(make_endpoint, post_webhook, provider="shopify") -> InboundEvent:
    with mock.patch.object(Outbox, "enqueue"):  # as if the broker lost the task
        post_webhook(make_endpoint(provider))
    return InboundEvent.objects.get()


def test_processing_failure_retries_then_dead_letters(make_endpoint, post_webhook):
    event = _stored(make_endpoint, post_webhook)
    InboundEvent.objects.filter(pk=event.pk).update(attempt_limit=2)
    with mock.patch.object(processing, "_fan_out", side_effect=RuntimeError("database hiccup")):
        assert _process(event.pk) == InboundEvent.Status.FAILED
        event.refresh_from_db()
        assert event.next_attempt_at > timezone.now() - timedelta(seconds=1)
        assert "database hiccup" in event.error
        later = timezone.now() + timedelta(seconds=60)  # full jitter may have picked ~0 s
        InboundEvent.objects.filter(pk=event.pk).update(next_attempt_at=later)
        assert _process(event.pk) is None  # not due yet
        InboundEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
        assert _process(event.pk) == InboundEvent.Status.DEAD
    event.refresh_from_db()
    assert "gave up after 2 attempts" in event.error


def test_malformed_payload_is_dead_at_once(make_endpoint, post_webhook):
    event = _stored(make_endpoint, post_webhook)
    headers = {k: v for k, v in event.headers.items() if k != "X-Shopify-Topic"}
    InboundEvent.objects.filter(pk=event.pk).update(headers=headers)
    assert _process(event.pk) == InboundEvent.Status.DEAD
    assert "Malformed payload" in InboundEvent.objects.get().error


def test_relay_queues_events_whose_task_was_lost(make_endpoint, post_webhook, settings):
    event = _stored(make_endpoint, post_webhook)
    assert event.status == InboundEvent.Status.RECEIVED
    assert services.inbound_events_relay_due() == 0  # its enqueue marker has not expired
    InboundEvent.objects.filter(pk=event.pk).update(enqueued_until=None)
    assert services.inbound_events_relay_due() == 1  # sync q2 runs it inline
    assert InboundEvent.objects.get().status == InboundEvent.Status.PROCESSED


def test_an_expired_lease_is_recovered_then_processed(make_endpoint, post_webhook):
    event = _stored(make_endpoint, post_webhook)
    past = timezone.now() - timedelta(seconds=1)
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.PROCESSING, attempts=1, lease_until=past, lease_token=event.key
    )
    assert _process(event.pk) is None  # still claimed by its (dead) worker
    assert services.inbound_events_recover_leases() == 1
    event.refresh_from_db()
    assert (event.status, event.lease_token) == (InboundEvent.Status.RECEIVED, None)
    assert _process(event.pk) == InboundEvent.Status.PROCESSED


def test_live_lease_is_respected(make_endpoint, post_webhook):
    event = _stored(make_endpoint, post_webhook)
    future = timezone.now() + timedelta(seconds=30)
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.PROCESSING, lease_until=future, lease_token=event.key
    )
    assert _process(event.pk) is None
    assert services.inbound_events_recover_leases() == 0


def test_replay_processes_dead_letters_again(
    make_endpoint, post_webhook, django_capture_on_commit_callbacks
):
    event = _stored(make_endpoint, post_webhook)
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.DEAD, attempts=10, attempt_limit=10, error="boom"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.inbound_events_replay(queryset=InboundEvent.objects.all()) == 1
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.attempts == 11
    assert (
        services.inbound_events_replay(queryset=InboundEvent.objects.filter(status="received")) == 0
    )
