"""Canaries for what is stored and shown (DESIGN §10 "What is stored is masked"): a credential
with every character that changes an encoding goes to a local server that echoes it back in
every form; afterwards no form of it is in a delivery's result, error, attempts, API answer,
admin page or replay export. Also: Django's DEBUG error page shows no secret of the frames of a
rotation (credentials through the admin and the API, subscription secrets); the receiver's are in
tests/webhooks/test_inbound_secrets.py."""

import base64
import html
import json
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote, quote_plus

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from credentials.services import credential_create
from integrations.deliveries.masking import MASK
from integrations.deliveries.services import deliveries_attempt, delivery_create
from integrations.models import Delivery, DeliveryAttempt
from integrations.services import integration_create
from tests.credentials.test_canary import _database_dump
from tests.local_http import LocalHttpServer
from webhooks.models import Subscription

pytestmark = pytest.mark.django_db


def _canary() -> str:
    # Quote, backslash, slash, plus, equals and a non-ASCII character (Latin-1, so that it can
    # travel in a header as well as in bodies).
    return f'c4n"ary\\{uuid.uuid4().hex[:12]}/+=é-tail'


def _json(text: str, **kwargs) -> str:
    return json.dumps(text, **kwargs)[1:-1]


def _forms(secret: str) -> dict[str, str]:
    """Every spelling of ``secret`` that must not be stored, built independently of the masker."""
    raw = secret.encode()
    forms = {
        "plain": secret,
        "json ascii": _json(secret),
        "json utf-8": _json(secret, ensure_ascii=False),
        "json in json": _json(_json(secret)),
        "python repr": repr(secret)[1:-1],
        "url": quote(secret, safe=""),
        "url plus": quote_plus(secret),
        "base64": base64.b64encode(raw).decode(),
        "base64 url-safe": base64.urlsafe_b64encode(raw).decode(),
        "hex": raw.hex(),
    }
    # Inside a larger base64 string (Basic auth), at each byte offset: the characters in the
    # middle depend on the secret alone.
    for before in (b"", b"u", b"us", b"user:"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(before + raw + b"!").decode()
            forms[f"base64 after {before!r} ({encode.__name__})"] = encoded[4:-4]
    return forms


def _leaks(secret: str, places: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    found = []
    for form_name, form in _forms(secret).items():
        spellings = {form, html.escape(form)}  # admin pages escape what they show
        for where, content in places:
            if any(spelling.encode() in content for spelling in spellings):
                found.append((where, form_name))
    return found


class EchoServer(LocalHttpServer):
    """Answers every request with everything it was sent (headers, body) and the bearer token
    in several encodings, JSON-encoded; ``/utf8`` encodes the JSON without ASCII escapes,
    ``/fail`` answers 400, ``/busy`` 503 and ``/text`` plain text."""

    def __init__(self):
        self.seen: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers)
                server.seen.append(headers)
                token = headers.get("Authorization", "").removeprefix("Bearer ")
                raw = token.encode()
                echo = {
                    "path": self.path,
                    "headers": headers,
                    "body": body.decode("utf-8", errors="replace"),
                    "headers_as_json": json.dumps(headers),
                    "token": token,
                    "base64": base64.b64encode(raw).decode(),
                    "base64_url": base64.urlsafe_b64encode(raw).decode(),
                    "basic": [base64.b64encode(before + raw).decode() for before in (b"u:", b"us:")]
                    + [base64.b64encode(b"user:" + raw + b"!").decode()],
                    "url": quote(token, safe=""),
                    "url_plus": quote_plus(token),
                    "hex": raw.hex(),
                }
                status, content_type = 200, "application/json"
                if self.path.startswith("/fail"):
                    status, echo = 400, {"error": token, "message": echo}
                elif self.path.startswith("/busy"):
                    status = 503
                if self.path.startswith("/text"):
                    content = "\n".join(f"{k}: {v}" for k, v in echo.items()).encode()
                    content_type = "text/plain; charset=utf-8"
                else:
                    utf8 = self.path.startswith("/utf8")
                    content = json.dumps(echo, ensure_ascii=not utf8).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("X-Echo-Authorization", headers.get("Authorization", ""))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def echo_server(settings):
    settings.SWITCHYARD_EGRESS_ALLOW = ["127.0.0.1"]
    server = EchoServer()
    yield server
    server.close()


def test_an_echoed_credential_is_stored_and_shown_nowhere(
    echo_server, acme, api, admin_client, tmp_path
):
    secret = _canary()
    credential_create(provider="http", purpose="api", customer=acme, fields={"token": secret})
    integration = integration_create(
        customer=acme, provider_key="http", config={"base_url": echo_server.url}
    )
    requests_to_send = {
        "/echo": "succeeded",
        "/utf8": "succeeded",
        "/text": "succeeded",
        "/fail": "dead",
        "/busy": "pending",
    }
    deliveries = []
    for path, expected in requests_to_send.items():
        delivery, _ = delivery_create(
            api_key=None,
            customer="acme",
            action="http.request",
            input={"method": "POST", "path": path, "body": {"note": "no secret here"}},
        )
        deliveries_attempt(delivery_ids=[delivery.pk])
        delivery.refresh_from_db()
        assert delivery.status == expected, (path, delivery.last_error)
        deliveries.append(delivery)

    # The server did get the secret, and echoed it: there is something to mask.
    assert all(seen["Authorization"] == f"Bearer {secret}" for seen in echo_server.seen)
    echo = Delivery.objects.get(pk=deliveries[0].pk).result
    assert echo["status"] == 200
    assert echo["body"]["headers"]["Authorization"] == f"Bearer {MASK}"
    assert echo["body"]["token"] == MASK
    assert MASK in deliveries[3].last_error

    places: list[tuple[str, bytes]] = []
    for delivery in Delivery.objects.filter(pk__in=[d.pk for d in deliveries]):
        for ensure_ascii in (True, False):
            places.append(
                (
                    f"delivery {delivery.pk} result",
                    json.dumps(delivery.result, ensure_ascii=ensure_ascii).encode(),
                )
            )
        places.append((f"delivery {delivery.pk} last_error", delivery.last_error.encode()))
        places.append((f"delivery {delivery.pk} dead_reason", str(delivery.dead_reason).encode()))
        for attempt in DeliveryAttempt.objects.filter(delivery=delivery):
            for model_field in DeliveryAttempt._meta.concrete_fields:
                value = getattr(attempt, model_field.attname)
                for ensure_ascii in (True, False):
                    text = json.dumps(value, ensure_ascii=ensure_ascii, default=str)
                    places.append((f"attempt {attempt.pk} {model_field.name}", text.encode()))
        response = api.get(f"/api/v1/deliveries/{delivery.pk}/")
        assert response.status_code == 200, response.content
        places.append((f"API delivery {delivery.pk}", response.content))
        page = admin_client.get(f"/admin/integrations/delivery/{delivery.pk}/change/")
        assert page.status_code == 200
        places.append((f"admin delivery {delivery.pk}", page.content))
        call_command(
            "export_replay", delivery.pk, name=f"canary-{delivery.pk}", output_dir=str(tmp_path)
        )
        exported = (tmp_path / f"canary-{delivery.pk}.json").read_bytes()
        assert MASK.encode() in exported
        places.append((f"export_replay {delivery.pk}", exported))
    places.append(("API delivery list", api.get("/api/v1/deliveries/").content))
    places.append(
        ("admin delivery list", admin_client.get("/admin/integrations/delivery/").content)
    )
    check = api.post(f"/api/v1/integrations/{integration.pk}/check/")
    assert check.status_code == 200, check.content
    assert check.json()["result"]["body"]["token"] == MASK
    places.append(("API integration check", check.content))
    places.append(("database dump", _database_dump()))

    # The search looks where the echoes went: the request body the server echoed is there.
    assert any(b"no secret here" in content for _, content in places)
    assert _leaks(secret, places) == []


def test_old_attempt_rows_are_masked_again_on_export(echo_server, acme, tmp_path):
    """A row stored before a masking rule existed (here: written back unmasked) is masked by
    export_replay with the credential version the attempt used."""
    secret = _canary()
    credential_create(provider="http", purpose="api", customer=acme, fields={"token": secret})
    integration_create(customer=acme, provider_key="http", config={"base_url": echo_server.url})
    delivery, _ = delivery_create(
        api_key=None, customer="acme", action="http.request", input={"path": "/echo"}
    )
    deliveries_attempt(delivery_ids=[delivery.pk])
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    DeliveryAttempt.objects.filter(pk=attempt.pk).update(
        request_url=f"{echo_server.url}/echo?token={quote_plus(secret)}",
        request_headers={"X-Old": f"Bearer {secret}"},
        response_body=json.dumps(
            {"echo": secret, "b64": base64.b64encode(secret.encode()).decode()}
        ),
    )
    call_command("export_replay", delivery.pk, name="old-row", output_dir=str(tmp_path))
    exported = (tmp_path / "old-row.json").read_bytes()
    assert _leaks(secret, [("export", exported)]) == []
    replay = json.loads(exported)
    assert replay["attempts"][0]["request"]["headers"]["X-Old"] == f"Bearer {MASK}"


# --- Django's DEBUG error page ----------------------------------------------------------------


def _debug_client(settings, client_class=Client, user=None):
    settings.DEBUG = True
    client = client_class()
    client.raise_request_exception = False
    if user is not None:
        client.force_login(user)
    return client


def _boom(*args, **kwargs):
    raise RuntimeError("canary: failure after the secrets were loaded")


class _Boom:
    def __init__(self, *args, **kwargs):
        _boom()


def test_admin_rotation_debug_page_shows_no_secret(settings, monkeypatch, acme, admin_user):
    old, new = _canary(), _canary()
    credential = credential_create(
        provider="trello", purpose="api", customer=acme, fields={"api_key": "k" * 32, "token": old}
    )
    monkeypatch.setattr("credentials.services.lifecycle.audit_record", _boom)
    client = _debug_client(settings, user=admin_user)
    response = client.post(
        f"/admin/credentials/credential/{credential.pk}/rotate/",
        {
            "field_api_key": "k" * 32,
            "field_token": new,
            "grace_seconds": "60",
            "reason": "r",
            "confirm": "on",
        },
    )
    assert response.status_code == 500
    assert b"credential_rotate" in response.content
    assert _leaks(new, [("debug page", response.content)]) == []
    assert _leaks(old, [("debug page", response.content)]) == []


def test_api_rotation_debug_page_shows_no_secret(settings, monkeypatch, acme, api_key):
    old, new = _canary(), _canary()
    credential = credential_create(
        provider="trello", purpose="api", customer=acme, fields={"api_key": "k" * 32, "token": old}
    )
    monkeypatch.setattr("credentials.services.lifecycle.audit_record", _boom)
    client = _debug_client(settings, client_class=APIClient)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    response = client.post(
        f"/api/v1/credentials/{credential.pk}/rotate/",
        {"fields": {"api_key": "k" * 32, "token": new}, "grace_seconds": 60},
        format="json",
    )
    assert response.status_code == 500
    assert b"credential_rotate" in response.content
    assert _leaks(new, [("debug page", response.content)]) == []
    assert _leaks(old, [("debug page", response.content)]) == []


@pytest.mark.parametrize(
    "break_at",
    [
        "webhooks.services.subscriptions.credential_rotate",
        # inside the vault's rotation, the new version written
        "credentials.services.lifecycle.audit_record",
        "webhooks.services.subscriptions.logger",
    ],
)
def test_subscription_secret_rotation_debug_page_shows_no_secret(
    break_at, settings, monkeypatch, api_key
):
    from webhooks.services import subscription_create

    subscription, first = subscription_create(
        url="http://127.0.0.1:9/hooks", event_types=["*"], allow_private=True
    )
    generated = []

    from webhooks.services import subscriptions as webhook_services

    real_new_secret = webhook_services._new_secret

    def remembered():
        generated.append(real_new_secret())
        return generated[-1]

    monkeypatch.setattr(webhook_services, "_new_secret", remembered)
    if break_at.endswith("logger"):

        class _Logger:
            def info(self, *args, **kwargs):
                _boom()

        monkeypatch.setattr(break_at, _Logger())
    else:
        monkeypatch.setattr(break_at, _boom)
    client = _debug_client(settings, client_class=APIClient)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    response = client.post(
        f"/api/v1/subscriptions/{subscription.pk}/rotate-secret/", {}, format="json"
    )
    assert response.status_code == 500
    assert b"subscription_rotate_secret" in response.content
    assert generated and Subscription.objects.filter(pk=subscription.pk).exists()
    for secret in (first, *generated):
        assert _leaks(secret, [("debug page", response.content)]) == []
