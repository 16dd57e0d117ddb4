"""Canary secrets through the whole platform: an API credential used by real deliveries (one of
them failing on a dropped connection, whose error quotes the URL), a webhook signing secret that
verifies a real inbound event, and a subscription secret that signs the fan-out. Afterwards no
form of any of them is in the database, the logs, an API response or an admin page, except the
one response that shows a subscription secret by design (its creation)."""

import base64
import io
import logging
import uuid
from urllib.parse import quote, quote_plus

import pytest
from django.db import connection

from config.logging import structured_formatter
from integrations.dashboard.rollups import dashboard_rollup
from integrations.deliveries.services import deliveries_relay_due
from tests.credentials.test_canary import _database_dump
from tests.integrations.providers.helpers import fixture_bytes
from tests.webhooks.conftest import SERVER, as_meta, signed_headers
from webhooks.models import WebhookEndpoint
from webhooks.services import inbound_events_relay_due

pytestmark = pytest.mark.django_db

CARD = "5abbe4b7ddc1b351ef961414"
DONE = "5abbe4b7ddc1b351ef9614a2"


def _forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [
        raw,
        quote(secret, safe="").encode(),
        quote_plus(secret).encode(),
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        raw.hex().encode(),
    ]


def test_canaries_are_found_nowhere(
    api, admin_client, client, acme, fake_provider, caplog, django_capture_on_commit_callbacks
):
    token, app_secret = f"tok{uuid.uuid4().hex}", f"app{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    connection.force_debug_cursor = True  # SQL and its parameters are logged too
    seen: list[tuple[str, bytes]] = []
    # The logs also as production writes them: JSON lines, bound ids and extras included.
    json_logs = io.StringIO()
    json_handler = logging.StreamHandler(json_logs)
    json_handler.setFormatter(structured_formatter("json"))
    logging.getLogger().addHandler(json_handler)

    def keep(where, response, expect=None):
        if expect is not None:
            assert response.status_code == expect, (where, response.content[:500])
        seen.append((where, response.content))
        return response

    try:
        with django_capture_on_commit_callbacks(execute=True):
            api_credential = keep(
                "create api credential",
                api.post(
                    "/api/v1/credentials/",
                    {
                        "provider": "trello",
                        "customer": "acme",
                        "fields": {"api_key": "a" * 32, "token": token},
                    },
                    format="json",
                ),
                201,
            ).json()
            keep(
                "create integration",
                api.post(
                    "/api/v1/integrations/",
                    {
                        "customer": "acme",
                        "provider": "trello",
                        "config": {
                            "base_url": f"{fake_provider.url}/trello",
                            "stages": {"done": DONE},
                        },
                    },
                    format="json",
                ),
                201,
            )
            fake_provider.fault(path_prefix="/trello/", drop_connection=True, count=1)
            proceed = {"customer": "acme", "action": "workflow.proceed"}
            for n in range(2):
                keep(
                    f"delivery {n}",
                    api.post(
                        "/api/v1/deliveries/",
                        {**proceed, "input": {"item": CARD, "to": "done"}},
                        format="json",
                        HTTP_IDEMPOTENCY_KEY=f"canary-{n}",
                    ),
                    202,
                )
            keep(
                "rotate api credential",
                api.post(
                    f"/api/v1/credentials/{api_credential['id']}/rotate/",
                    {"fields": {"api_key": "b" * 32, "token": token + "-2"}, "grace_seconds": 60},
                    format="json",
                ),
            )

            signing = keep(
                "create signing credential",
                api.post(
                    "/api/v1/credentials/",
                    {
                        "provider": "trello",
                        "purpose": "webhook_signing",
                        "customer": "acme",
                        "fields": {"secret": app_secret},
                    },
                    format="json",
                ),
                201,
            ).json()
            endpoint = keep(
                "create endpoint",
                api.post(
                    "/api/v1/webhook-endpoints/",
                    {"customer": "acme", "provider": "trello", "credential": signing["id"]},
                    format="json",
                ),
                201,
            ).json()
            created = api.post(
                "/api/v1/subscriptions/",
                {
                    "url": f"{fake_provider.url}/http/hooks",
                    "event_types": ["*"],
                    "allow_private": True,
                },
                format="json",
            )
            assert created.status_code == 201, created.content
            subscription_secret = created.json()["secret"]
            body = fixture_bytes("trello", "updateCard__moved")
            path = endpoint["url"].removeprefix(SERVER)
            headers = signed_headers("trello", body, endpoint["url"], secret=app_secret)
            keep(
                "receive webhook",
                client.post(path, data=body, content_type="application/json", **as_meta(headers)),
                202,
            )
            inbound_events_relay_due()  # the dispatcher's pass: process and fan out
            deliveries_relay_due()  # and queue the fan-out deliveries not sent at once

        deliveries = keep("list deliveries", api.get("/api/v1/deliveries/")).json()["results"]
        assert {d["status"] for d in deliveries} >= {"succeeded"}
        for delivery in deliveries:
            keep("delivery detail", api.get(f"/api/v1/deliveries/{delivery['id']}/"))
            keep(
                "admin delivery",
                admin_client.get(f"/admin/integrations/delivery/{delivery['id']}/change/"),
            )
        events = keep("list events", api.get("/api/v1/inbound-events/")).json()["results"]
        assert [e["status"] for e in events] == ["processed"]
        keep("event detail", api.get(f"/api/v1/inbound-events/{events[0]['id']}/"))
        subscriptions = keep("list subscriptions", api.get("/api/v1/subscriptions/")).json()
        keep("list credentials", api.get("/api/v1/credentials/"))
        # The console's health pages and lists show request and response data too.
        health_pages = [
            f"webhooks/subscription/{s['id']}/change/" for s in subscriptions["results"]
        ] + [f"webhooks/webhookendpoint/{e.pk}/change/" for e in WebhookEndpoint.objects.all()]
        dashboard_rollup()  # notes the attempts
        dashboard_rollup()  # rolls them up for the dashboard's figures
        for page in (
            "?window=1h",
            "?window=7d",
            "integrations/processheartbeat/",
            "integrations/delivery/",
            "integrations/deadletter/",
            "integrations/circuitbreaker/",
            f"webhooks/inboundevent/{events[0]['id']}/change/",
            "webhooks/subscription/",
            "webhooks/webhookendpoint/",
            "credentials/credential/",
            f"customers/customer/{acme.pk}/change/",
            f"oauth/connect/{acme.pk}/",
            *health_pages,
        ):
            keep(f"admin {page}", admin_client.get(f"/admin/{page}"))
        dump = _database_dump()
    finally:
        connection.force_debug_cursor = False
        logging.getLogger().removeHandler(json_handler)

    sent = fake_provider.journal()
    assert any(token in str(r["query"]) for r in sent), "the token did reach the provider"
    assert any("webhook-signature" in {k.lower() for k in r["headers"]} for r in sent)
    logs = "\n".join([caplog.text] + [f"{r.getMessage()} {r.args!r}" for r in caplog.records])
    assert '"event": "deliveries.attempted"' in json_logs.getvalue()
    logs += json_logs.getvalue()
    places = [("database dump", dump), ("logs", logs.encode()), *seen]
    for secret in (token, token + "-2", app_secret, subscription_secret):
        for form in _forms(secret):
            leaks = [where for where, body in places if form in body]
            assert not leaks, f"a form of a canary secret was found in: {leaks}"
