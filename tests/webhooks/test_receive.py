"""The receiver through Django's test client, verifiers not patched: every byte-exact fixture is
accepted and processed; every forged, stale or malformed variant is refused."""

import io
import time
import uuid

import pytest
from django.db import connection

from credentials.services import credential_rotate
from tests.integrations.providers.helpers import fixture_bytes
from tests.webhooks.conftest import FIXTURES, SECRETS, SERVER, as_meta, signed_headers
from webhooks.models import InboundEvent, WebhookEndpoint

pytestmark = pytest.mark.django_db

PROVIDERS = sorted(FIXTURES)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fixture_is_accepted_and_processed(provider, make_endpoint, post_webhook):
    endpoint = make_endpoint(provider)
    response = post_webhook(endpoint)
    assert response.status_code == 202, response.content
    event = InboundEvent.objects.get(pk=response.json()["id"])
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.signature_version == 1
    assert bytes(event.body) == fixture_bytes(provider, FIXTURES[provider][0])
    assert event.type == FIXTURES[provider][1]
    assert event.envelope["type"] == FIXTURES[provider][1]
    assert event.envelope["customer"] == "acme"
    assert event.envelope["provider"] == provider
    assert event.envelope["id"] == f"evt_{event.key.hex}"
    assert event.external_id
    # Signatures and credentials are never stored with the headers.
    stored = {name.lower() for name in event.headers}
    assert not stored & {"x-trello-webhook", "x-shopify-hmac-sha256", "stripe-signature"}
    assert "webhook-signature" not in stored


def _tampered(body: bytes) -> bytes:
    return body.replace(b"}", b" }", 1)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("variant", ["tampered", "wrong_secret", "unsigned"])
def test_forged_requests_get_401_and_are_counted(provider, variant, make_endpoint, post_webhook):
    endpoint = make_endpoint(provider)
    body = fixture_bytes(provider, FIXTURES[provider][0])
    headers = signed_headers(provider, body, SERVER + endpoint.path)
    if variant == "tampered":
        body = _tampered(body)
    elif variant == "wrong_secret":
        other = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
        headers = signed_headers(provider, body, SERVER + endpoint.path, secret=other)
    else:
        headers = {
            k: v
            for k, v in headers.items()
            if "signature" not in k.lower() and "hmac" not in k.lower() and k != "X-Trello-Webhook"
        }
    response = post_webhook(endpoint, body, headers)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert not InboundEvent.objects.exists()
    endpoint.refresh_from_db()
    assert endpoint.rejected_signatures == 1


@pytest.mark.parametrize(
    "provider,offset",
    # Stripe's scheme bounds only the age of a signature; Standard Webhooks both ways.
    [("stripe", -361), ("standard_webhooks", -361), ("standard_webhooks", 400)],
    ids=["stripe-expired", "sw-expired", "sw-future"],
)
def test_timestamps_outside_tolerance_get_401(provider, offset, make_endpoint, post_webhook):
    endpoint = make_endpoint(provider)
    response = post_webhook(endpoint, timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("provider", ["stripe", "standard_webhooks"])
def test_an_endpoints_own_tolerance_replaces_the_providers(
    provider, make_endpoint, post_webhook, globex
):
    narrow = make_endpoint(provider, tolerance_seconds=60)
    response = post_webhook(narrow, timestamp=int(time.time()) - 120)  # fine by the default
    assert response.status_code == 401
    assert "tolerance of 60 s" in response.json()["detail"]
    wide = make_endpoint(provider, customer=globex, tolerance_seconds=900)
    assert post_webhook(wide, timestamp=int(time.time()) - 600).status_code == 202
    assert post_webhook(wide, timestamp=int(time.time()) - 960).status_code == 401


@pytest.mark.parametrize("provider", ["stripe", "standard_webhooks"])
def test_replayed_old_signature_gets_401(provider, make_endpoint, post_webhook):
    """A captured request sent again ten minutes later: valid signature, stale timestamp."""
    endpoint = make_endpoint(provider)
    body = fixture_bytes(provider, FIXTURES[provider][0])
    captured = signed_headers(provider, body, "", timestamp=int(time.time()) - 600)
    response = post_webhook(endpoint, body, captured)
    assert response.status_code == 401


@pytest.mark.parametrize("provider", PROVIDERS)
def test_duplicate_is_acknowledged_and_processed_once(provider, make_endpoint, post_webhook):
    endpoint = make_endpoint(provider)
    first = post_webhook(endpoint)
    second = post_webhook(endpoint)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "status": "duplicate"}
    event = InboundEvent.objects.get()
    assert event.attempts == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_previous_secret_accepted_during_grace_and_recorded(provider, make_endpoint, post_webhook):
    endpoint = make_endpoint(provider)
    new_secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    credential_rotate(credential=endpoint.credential, fields={"secret": new_secret})
    old = post_webhook(endpoint)
    assert old.status_code == 202, old.content
    assert InboundEvent.objects.get(pk=old.json()["id"]).signature_version == 1
    body = fixture_bytes(provider, FIXTURES[provider][0]).replace(b"Webhooks", b"Hooks")
    new = post_webhook(endpoint, body, secret=new_secret, msg_id="msg_second")
    if provider in ("trello", "stripe"):
        # Their event id is in the body; the edit above made it the same event again.
        assert new.status_code == 200
    else:
        assert new.status_code == 202, new.content
        assert InboundEvent.objects.get(pk=new.json()["id"]).signature_version == 2


def test_previous_secret_refused_once_grace_is_over(make_endpoint, post_webhook):
    endpoint = make_endpoint("shopify")
    credential_rotate(credential=endpoint.credential, fields={"secret": "new"}, grace_seconds=0)
    assert post_webhook(endpoint).status_code == 401
    assert post_webhook(endpoint, secret="new").status_code == 202


def test_unknown_endpoint_and_wrong_provider_get_404(make_endpoint, post_webhook, client):
    endpoint = make_endpoint("shopify")
    missing = client.post(
        f"/webhooks/shopify/{uuid.uuid4()}/", data=b"{}", content_type="application/json"
    )
    assert missing.status_code == 404
    wrong = client.post(
        f"/webhooks/stripe/{endpoint.public_id}/", data=b"{}", content_type="application/json"
    )
    assert wrong.status_code == 404
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    assert post_webhook(endpoint).status_code == 404


def test_head_answers_200_without_signature(make_endpoint, client):
    endpoint = make_endpoint("trello")
    assert client.head(endpoint.path).status_code == 200


def test_two_megabyte_body_gets_413(make_endpoint, post_webhook):
    endpoint = make_endpoint("shopify")
    body = b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = post_webhook(endpoint, body)
    assert response.status_code == 413
    assert not InboundEvent.objects.exists()


def _post_chunked(client, endpoint, body: bytes, *, terminated: bool = True):
    """As a server hands Django a chunked request: no Content-Length, the de-chunked body in
    ``wsgi.input``, ending where the body ends when the server says ``wsgi.input_terminated``."""
    headers = signed_headers(endpoint.provider, body, SERVER + endpoint.path)
    environ = {
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        **({"wsgi.input_terminated": True} if terminated else {}),
    }
    return client.post(
        endpoint.path, content_type="application/json", **as_meta(headers), **environ
    )


def test_chunked_body_is_read_from_a_terminated_input(make_endpoint, client):
    endpoint = make_endpoint("shopify")
    body = fixture_bytes("shopify", FIXTURES["shopify"][0])
    response = _post_chunked(client, endpoint, body)
    assert response.status_code == 202, response.content
    assert bytes(InboundEvent.objects.get().body) == body


def test_chunked_body_over_the_limit_gets_413(make_endpoint, client, settings):
    settings.SWITCHYARD_MAX_BODY_BYTES = 1000
    endpoint = make_endpoint("shopify")
    body = b'{"pad": "' + b"x" * 200_000 + b'"}'
    response = _post_chunked(client, endpoint, body)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/payload-too-large")
    assert not InboundEvent.objects.exists()
    endpoint.refresh_from_db()
    assert endpoint.rejected_signatures == 0


def test_chunked_body_a_server_cannot_bound_gets_411_not_401(make_endpoint, client):
    endpoint = make_endpoint("shopify")
    body = fixture_bytes("shopify", FIXTURES["shopify"][0])
    response = _post_chunked(client, endpoint, body, terminated=False)
    assert response.status_code == 411
    assert response["Content-Type"] == "application/problem+json"
    endpoint.refresh_from_db()
    assert endpoint.rejected_signatures == 0


MALFORMED = {
    "not-json": (b"topic=products/update&id=1", "not JSON"),
    "not-an-object": (b"[1, 2]", "not a JSON object"),
    "nan": (b'{"id": "evt_1", "type": "x", "amount": NaN}', "NaN"),
    "nul": (b'{"id": "evt_1", "type": "x", "note": "a\\u0000b"}', "NUL"),
    "too-deep": (b'{"id": "evt_1", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "deeper"),
}


@pytest.mark.parametrize("provider", ["shopify", "standard_webhooks", "stripe"])
@pytest.mark.parametrize("kind", MALFORMED)
def test_a_signed_body_that_cannot_be_processed_is_kept_as_a_dead_letter(
    provider, kind, make_endpoint, post_webhook
):
    """Refusing a correctly signed body would have the provider retry it for days (or disable
    the endpoint): it is acknowledged, kept byte for byte and dead-lettered with the reason."""
    endpoint = make_endpoint(provider)
    body, reason = MALFORMED[kind]
    assert post_webhook(endpoint, body, {}).status_code == 401  # unsigned: signature first
    response = post_webhook(endpoint, body)
    assert response.status_code == 202
    event = InboundEvent.objects.get()
    assert bytes(event.body) == body
    assert (event.status, event.next_attempt_at) == (InboundEvent.Status.DEAD, None)
    assert event.error.startswith("Malformed payload:") and reason in event.error
    # Delivered again (the provider never saw a 2xx, say): still one event.
    assert post_webhook(endpoint, body).status_code == 200
    assert InboundEvent.objects.count() == 1


def test_database_gone_while_webhook_arrives_is_5xx(make_endpoint, post_webhook, monkeypatch):
    endpoint = make_endpoint("shopify")

    def broken(*args, **kwargs):
        from django.db import OperationalError

        raise OperationalError("server closed the connection unexpectedly")

    # Every query from here on fails as with a dropped connection.
    with connection.execute_wrapper(broken):
        response = post_webhook(endpoint)
    assert response.status_code == 503
    assert not InboundEvent.objects.exists()


def test_database_gone_at_insert_is_5xx_not_2xx(make_endpoint, post_webhook):
    endpoint = make_endpoint("standard_webhooks")

    def fail_inserts(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT") and "webhooks_inboundevent" in sql:
            from django.db import OperationalError

            raise OperationalError("connection lost")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_inserts):
        response = post_webhook(endpoint)
    assert response.status_code == 503
    assert not InboundEvent.objects.exists()
    assert post_webhook(endpoint).status_code == 202  # the provider's retry is accepted


def test_secret_values_are_not_in_stored_rows(make_endpoint, post_webhook):
    endpoint = make_endpoint("stripe")
    post_webhook(endpoint)
    event = InboundEvent.objects.get()
    assert SECRETS["stripe"] not in str(event.headers)
