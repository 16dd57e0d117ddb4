"""The ingest hot path (bench/ingest.py): the per-process endpoint and secrets cache with its
bounded staleness, no broker write per request, and the dispatcher relay queueing batches."""

import dataclasses
import time
from types import SimpleNamespace
from unittest import mock

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from credentials.services import credential_revoke, credential_rotate
from integrations.models import Delivery
from integrations.outbox import Outbox
from integrations.outbox import broker as outbox
from webhooks import selectors, services
from webhooks.models import InboundEvent
from webhooks.services import processing, relay

pytestmark = pytest.mark.django_db

NEW_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def _later(monkeypatch, seconds: float) -> None:
    """Move the cache's clock past its lifetime, for the webhooks selectors only."""
    clock = time.monotonic() + seconds
    monkeypatch.setattr(selectors, "time", SimpleNamespace(monotonic=lambda: clock))


def test_a_cached_endpoint_costs_only_the_insert(make_endpoint, post_webhook, client):
    endpoint = make_endpoint("standard_webhooks")
    assert post_webhook(endpoint, msg_id="msg_1").status_code == 202
    with (
        mock.patch.object(outbox, "async_task") as enqueue,
        CaptureQueriesContext(connection) as queries,
    ):
        assert post_webhook(endpoint, msg_id="msg_2").status_code == 202
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # The receiver: one INSERT (the savepoint is the test's transaction); the rest is the
    # relay pass the fixture runs afterwards.
    assert statements[:3] == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert "webhooks_webhookendpoint" not in " ".join(q["sql"] for q in queries.captured_queries)
    enqueue.assert_called_once()  # by the relay, not by the request


def test_receiver_queues_nothing_and_the_next_relay_pass_does(make_endpoint, client):
    from tests.integrations.providers.helpers import fixture_bytes
    from tests.webhooks.conftest import SERVER, as_meta, signed_headers

    endpoint = make_endpoint("shopify")
    body = fixture_bytes("shopify", "products_update__basic")
    headers = signed_headers("shopify", body, SERVER + endpoint.path)
    with mock.patch.object(outbox, "async_task") as enqueue:
        response = client.post(
            endpoint.path, data=body, content_type="application/json", **as_meta(headers)
        )
        assert response.status_code == 202
        enqueue.assert_not_called()
        event = InboundEvent.objects.get()
        assert (event.status, event.enqueued_until) == ("received", None)
        assert services.inbound_events_relay_due() == 1
        enqueue.assert_called_once()
    assert InboundEvent.objects.get().enqueued_until is not None


def test_rotated_secret_is_accepted_at_once_despite_the_cache(make_endpoint, post_webhook):
    endpoint = make_endpoint("standard_webhooks")
    assert post_webhook(endpoint, msg_id="msg_1").status_code == 202  # cached: version 1 only
    credential_rotate(credential=endpoint.credential, fields={"secret": NEW_SECRET})
    response = post_webhook(endpoint, secret=NEW_SECRET, msg_id="msg_2")
    assert response.status_code == 202, response.content
    assert InboundEvent.objects.get(pk=response.json()["id"]).signature_version == 2


def test_revoked_secret_is_refused_within_the_cache_lifetime(
    make_endpoint, post_webhook, monkeypatch
):
    endpoint = make_endpoint("standard_webhooks")
    credential_rotate(credential=endpoint.credential, fields={"secret": NEW_SECRET})
    assert post_webhook(endpoint, msg_id="msg_1").status_code == 202  # previous, in grace
    credential_revoke(credential=endpoint.credential)
    # The documented staleness: this process still holds the revoked version for a moment.
    assert post_webhook(endpoint, msg_id="msg_2").status_code == 202
    _later(monkeypatch, selectors.ENDPOINT_CACHE_SECONDS + 1)
    assert post_webhook(endpoint, msg_id="msg_3").status_code == 401
    assert post_webhook(endpoint, secret=NEW_SECRET, msg_id="msg_4").status_code == 202


def test_deactivated_endpoint_gets_404_once_the_cache_expires(
    make_endpoint, post_webhook, monkeypatch
):
    endpoint = make_endpoint("standard_webhooks")
    assert post_webhook(endpoint, msg_id="msg_1").status_code == 202
    type(endpoint).objects.filter(pk=endpoint.pk).update(active=False)
    _later(monkeypatch, selectors.ENDPOINT_CACHE_SECONDS + 1)
    assert post_webhook(endpoint, msg_id="msg_2").status_code == 404


def test_refusal_is_counted_once_after_checking_the_database(make_endpoint, post_webhook):
    endpoint = make_endpoint("standard_webhooks")
    assert post_webhook(endpoint, msg_id="msg_1").status_code == 202
    assert post_webhook(endpoint, secret=NEW_SECRET, msg_id="msg_2").status_code == 401
    endpoint.refresh_from_db()
    assert endpoint.rejected_signatures == 1


def test_relay_queues_one_task_per_batch(make_endpoint, post_webhook, monkeypatch, settings):
    monkeypatch.setattr(relay, "INBOUND", dataclasses.replace(relay.INBOUND, batch_size=2))
    endpoint = make_endpoint("standard_webhooks")
    with mock.patch.object(Outbox, "enqueue"):  # the fixture's relay passes lose their tasks
        for n in range(5):
            assert post_webhook(endpoint, msg_id=f"msg_{n}").status_code == 202
    InboundEvent.objects.update(enqueued_until=None)
    settings.SWITCHYARD_RELAY_MAX_QUEUED = 4
    with mock.patch.object(outbox, "async_task") as enqueue:
        assert services.inbound_events_relay_due() == 4  # capped at the queued maximum
        assert services.inbound_events_relay_due() == 0  # those four are still queued
    batches = [call.args[1] for call in enqueue.call_args_list]
    assert [len(batch) for batch in batches] == [2, 2]
    assert InboundEvent.objects.filter(enqueued_until__isnull=True).count() == 1


def test_broker_down_clears_the_batch_markers(make_endpoint, post_webhook):
    endpoint = make_endpoint("standard_webhooks")
    with mock.patch.object(outbox, "async_task", side_effect=ConnectionError("broker down")):
        assert post_webhook(endpoint, msg_id="msg_1").status_code == 202
    event = InboundEvent.objects.get()
    assert (event.status, event.enqueued_until) == ("received", None)  # next pass retries


def test_one_failing_event_does_not_hold_back_its_batch(make_endpoint, post_webhook):
    endpoint = make_endpoint("standard_webhooks")
    with mock.patch.object(Outbox, "enqueue"):
        for n in range(3):
            post_webhook(endpoint, msg_id=f"msg_{n}")
    ids = list(InboundEvent.objects.order_by("pk").values_list("pk", flat=True))
    real = processing._fan_out

    def flaky(event, customer, subscriptions):
        if event.pk == ids[1]:
            raise RuntimeError("boom")
        return real(event, customer, subscriptions)

    with mock.patch.object(processing, "_fan_out", side_effect=flaky):
        outcomes = services.inbound_events_process(event_ids=ids)
    assert outcomes == {ids[0]: "processed", ids[1]: "failed", ids[2]: "processed"}
    # Processed events are not processed twice (the failed one may be due again at once).
    assert set(services.inbound_events_process(event_ids=ids)) <= {ids[1]}


def test_receiver_skips_the_per_request_health_check(make_endpoint, post_webhook, monkeypatch):
    endpoint = make_endpoint("standard_webhooks")
    assert post_webhook(endpoint, msg_id="msg_1").status_code == 202
    # As at the start of a request under CONN_HEALTH_CHECKS: the next query would first probe.
    default = connections["default"]
    monkeypatch.setattr(default, "health_check_enabled", True)
    monkeypatch.setattr(default, "health_check_done", False)
    with mock.patch.object(default, "is_usable", return_value=True) as probe:
        assert post_webhook(endpoint, msg_id="msg_2").status_code == 202
    probe.assert_not_called()


def test_stored_row_matches_what_the_orm_writes(make_endpoint, post_webhook):
    endpoint = make_endpoint("standard_webhooks")
    response = post_webhook(endpoint, msg_id="msg_1")
    event = InboundEvent.objects.get(pk=response.json()["id"])
    assert (event.endpoint_id, event.provider, event.external_id) == (
        endpoint.pk,
        "standard_webhooks",
        "msg_1",
    )
    assert event.key and event.received_at and event.next_attempt_at <= event.received_at
    assert (event.attempts, event.lease_token, event.type) == (1, None, "invoice.paid")
    assert "webhook-signature" not in {name.lower() for name in event.headers}


def test_a_save_signal_on_inbound_events_still_fires(make_endpoint, post_webhook):
    from django.db.models.signals import post_save

    endpoint = make_endpoint("standard_webhooks")
    seen = []

    def listener(sender, instance, created, **kwargs):
        seen.append((instance.external_id, created))

    post_save.connect(listener, sender=InboundEvent)
    try:
        assert post_webhook(endpoint, msg_id="msg_1").status_code == 202
    finally:
        post_save.disconnect(listener, sender=InboundEvent)
    assert ("msg_1", True) in seen


def test_a_batch_pauses_between_chunks_but_not_after_the_last(
    make_endpoint, post_webhook, monkeypatch
):
    monkeypatch.setattr(processing, "PACE_EVERY", 2)
    endpoint = make_endpoint("standard_webhooks")
    with mock.patch.object(Outbox, "enqueue"):
        for n in range(5):
            assert post_webhook(endpoint, msg_id=f"msg_{n}").status_code == 202
    ids = list(InboundEvent.objects.values_list("pk", flat=True))
    with mock.patch.object(processing.time, "sleep") as pause:
        outcomes = services.inbound_events_process(event_ids=ids)
    assert set(outcomes.values()) == {"processed"}
    assert pause.call_count == 2  # after the 2nd and the 4th of 5 events
    assert all(call.args[0] >= 0 for call in pause.call_args_list)


def test_inbound_events_leave_room_for_hot_updates_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("fillfactor is a PostgreSQL storage parameter")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", [InboundEvent._meta.db_table]
        )
        assert "fillfactor=70" in cursor.fetchone()[0]
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", [InboundEvent._meta.db_table]
        )
        # The endpoint is looked up through the unique (endpoint, external_id) index alone.
        assert not [d for d in (row[0] for row in cursor.fetchall()) if "(endpoint_id)" in d]


@pytest.mark.parametrize("subscribed", [False, True], ids=["no-subscriber", "one-subscriber"])
def test_a_batch_costs_no_query_per_event_but_its_deliveries(
    make_endpoint, post_webhook, subscribed
):
    """Processing reads only the columns it uses (``PROCESSED_FIELDS``): a deferred column that
    it read or settled would be loaded again by one query per event."""
    endpoint = make_endpoint("standard_webhooks")
    if subscribed:
        # Nothing is sent: the deliveries' enqueueing is patched out below.
        services.subscription_create(
            url="http://127.0.0.1:9/in",
            event_types=["*"],
            allow_private=True,
            customer=endpoint.customer,
        )
    fan_out, fan_out_queries = processing._fan_out, []

    def counted_fan_out(event, customer, subscriptions):
        with CaptureQueriesContext(connection) as inner:
            fanned = fan_out(event, customer, subscriptions)
        fan_out_queries.append(len(inner.captured_queries))
        return fanned

    def queries_besides_fan_out(count: int, first: int) -> int:
        with mock.patch.object(Outbox, "enqueue"):
            for n in range(first, first + count):
                assert post_webhook(endpoint, msg_id=f"msg_{n}").status_code == 202
        ids = list(InboundEvent.objects.filter(status="received").values_list("pk", flat=True))
        fan_out_queries.clear()
        with (
            mock.patch.object(processing.time, "sleep"),
            mock.patch.object(processing, "_fan_out", side_effect=counted_fan_out),
            mock.patch("integrations.outbox.outbox.enqueue_batches"),
            CaptureQueriesContext(connection) as queries,
        ):
            outcomes = services.inbound_events_process(event_ids=ids)
        assert list(outcomes.values()) == ["processed"] * count
        assert bool(sum(fan_out_queries)) is subscribed
        return len(queries.captured_queries) - sum(fan_out_queries)

    assert queries_besides_fan_out(1, first=0) == queries_besides_fan_out(6, first=1)


def test_a_batch_of_two_customers_events_keeps_each_to_its_customer(
    make_endpoint, post_webhook, globex
):
    """One task may carry several customers' events: each envelope names its own customer and
    fans out to that customer's subscriptions (and the global ones) only."""
    endpoints = {"acme": make_endpoint("standard_webhooks")}
    endpoints["globex"] = make_endpoint("standard_webhooks", customer=globex)
    scoped = {
        slug: services.subscription_create(
            url=f"http://127.0.0.1:9/{slug}",
            event_types=["*"],
            allow_private=True,
            customer=endpoint.customer,
        )[0]
        for slug, endpoint in endpoints.items()
    }
    everyone, _ = services.subscription_create(
        url="http://127.0.0.1:9/all", event_types=["*"], allow_private=True
    )
    with mock.patch.object(Outbox, "enqueue"):
        for n, endpoint in enumerate([endpoints["acme"], endpoints["globex"], endpoints["acme"]]):
            assert post_webhook(endpoint, msg_id=f"msg_{n}").status_code == 202
    ids = list(InboundEvent.objects.order_by("pk").values_list("pk", flat=True))
    with (
        mock.patch.object(processing.time, "sleep"),
        mock.patch("integrations.outbox.outbox.enqueue_batches"),
    ):
        assert set(services.inbound_events_process(event_ids=ids).values()) == {"processed"}
    for event in InboundEvent.objects.select_related("endpoint__customer"):
        slug = event.endpoint.customer.slug
        assert event.envelope["customer"] == slug
        sent_to = {d.input["subscription"] for d in Delivery.objects.filter(input__event=event.pk)}
        assert sent_to == {scoped[slug].pk, everyone.pk}
        assert set(
            Delivery.objects.filter(input__event=event.pk).values_list("customer__slug", flat=True)
        ) == {slug}
