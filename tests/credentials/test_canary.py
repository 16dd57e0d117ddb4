"""The vault's promise, checked end to end: a secret stored through the API, rotated through the
admin and revoked is found nowhere afterwards (database, logs, API responses, admin pages)."""

import base64
import logging
import uuid
from io import StringIO

from django.core.management import call_command
from django.db import connection

from credentials.services import (
    credential_resolve,
    credential_verification_secrets,
    credential_versions_expire,
)
from tests.credentials.conftest import KEY_A, KEY_B


def _forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw), raw.hex().encode()]


def _database_dump() -> bytes:
    """Every value of every table, as bytes (SQLite and PostgreSQL alike)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes | bytearray):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def test_canary_secret_is_found_nowhere(api, admin_client, acme, caplog, settings):
    canary = f"canary-{uuid.uuid4().hex}"
    rotated_canary = f"canary-{uuid.uuid4().hex}"
    marker = f"marker-{uuid.uuid4().hex}"  # proves each search below looks where it should
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True  # SQL and its parameters go to the log as well
    seen = []  # (where, body) of every API response and admin page

    def keep(where, response):
        seen.append((where, response.content))
        return response

    try:
        created = keep(
            "api create",
            api.post(
                "/api/v1/credentials/",
                {
                    "provider": "trello",
                    "customer": "acme",
                    "label": marker,
                    "fields": {"api_key": canary + "-key", "token": canary},
                },
                format="json",
            ),
        )
        assert created.status_code == 201
        pk = created.json()["id"]
        assert credential_resolve(provider="trello", customer=acme).fields["token"] == canary

        admin = f"/admin/credentials/credential/{pk}"
        keep("admin rotate page", admin_client.get(f"{admin}/rotate/"))
        rotated = keep(
            "admin rotate",
            admin_client.post(
                f"{admin}/rotate/",
                {
                    "field_api_key": rotated_canary + "-key",
                    "field_token": rotated_canary,
                    "grace_seconds": "3600",
                    "confirm": "on",
                },
                follow=True,
            ),
        )
        assert rotated.redirect_chain, rotated.content.decode()[:500]
        keep(
            "admin rotate without confirmation",
            admin_client.post(f"{admin}/rotate/", {"field_token": canary, "grace_seconds": "1"}),
        )
        assert [v for v, _ in credential_verification_secrets(credential=_credential(pk))] == [
            2,
            1,
        ]

        keep("api revoke", api.post(f"/api/v1/credentials/{pk}/revoke/", {}, format="json"))
        keep("api detail", api.get(f"/api/v1/credentials/{pk}/"))
        keep("api list", api.get("/api/v1/credentials/"))
        keep(
            "api rotate conflict",
            api.post(f"/api/v1/credentials/{pk}/rotate/", {"fields": {}}, format="json"),
        )
        credential_versions_expire()
        settings.SWITCHYARD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
        reencrypt_output = StringIO()
        call_command("credentials_reencrypt", stdout=reencrypt_output)
        seen.append(("credentials_reencrypt output", reencrypt_output.getvalue().encode()))
        for page in ("/", "/add/", f"/{pk}/change/", f"/{pk}/history/"):
            keep(f"admin {page}", admin_client.get(f"/admin/credentials/credential{page}"))
        keep("admin audit", admin_client.get("/admin/credentials/credentialauditentry/"))
        keep("admin log", admin_client.get("/admin/"))
        dump = _database_dump()
    finally:
        connection.force_debug_cursor = False

    logs = "\n".join(
        [caplog.text] + [f"{r.getMessage()} {r.args!r}" for r in caplog.records]
    ).encode()
    places = [("database dump", dump), ("logs", logs), *seen]
    # The searches are not vacuous: the marker (the label) shows up in the database, the SQL
    # log and the pages that list the credential.
    assert marker.encode() in dump and marker.encode() in logs
    assert any(marker.encode() in body for where, body in seen if where.startswith("api"))
    assert any(marker.encode() in body for where, body in seen if where.startswith("admin"))
    for secret in (canary, rotated_canary):
        for form in _forms(secret):
            leaks = [where for where, body in places if form in body]
            assert not leaks, f"secret found in: {leaks}"


def _credential(pk):
    from credentials.models import Credential

    return Credential.objects.get(pk=pk)


def test_error_reports_hide_secrets(acme, monkeypatch):
    """Django's error reports (mails to ADMINS, Sentry-style handlers) show frame locals."""
    import sys

    from django.views.debug import ExceptionReporter

    from credentials import services

    canary = f"canary-{uuid.uuid4().hex}"

    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services.versions.CredentialVersion.objects, "create", explode)
    try:
        services.credential_create(
            provider="trello",
            purpose="api",
            customer=acme,
            fields={"api_key": "k", "token": canary},
        )
    except RuntimeError:
        exc_type, exc, tb = sys.exc_info()
        # From the service's frame on: this test's own frame holds the canary, of course.
        report = ExceptionReporter(None, exc_type, exc, tb.tb_next).get_traceback_html()
    assert "database went away" in report and "version_add" in report
    assert canary not in report
