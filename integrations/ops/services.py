"""Recording and sending operational notifications.

``ops_notify`` records one (at most one per type and subject per window; repeats only count)
from wherever the event happens: a breaker's transition, a subscription's disabling, the
periodic conditions. The dispatcher step ``ops_notifications_send`` then POSTs it, signed with
the ops signing secret (a vault credential, rotatable like any other), through the egress
policy, retrying with backoff; emails go through Django's email backend.

Ops notifications are not deliveries: a delivery belongs to a customer, these to the platform.
They keep their own small retry state instead (status, attempts, next attempt)."""

import base64
import json
import secrets as random_secrets
from datetime import timedelta

import structlog
from django.conf import settings
from django.core.mail import send_mail
from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials.models import Credential
from credentials.services import (
    credential_create_owned,
    credential_rotate,
    credential_verification_secrets,
    credential_version_mark_used,
)
from integrations import egress
from integrations.models import OpsNotification
from integrations.providers.standard_webhooks import StandardWebhooksProvider, sign_headers

__all__ = (
    "OPS_SIGNING_SCOPE",
    "ops_check_seconds",
    "ops_notifications_send",
    "ops_notify",
    "ops_signing_secret_rotate",
)

logger = structlog.stdlib.get_logger(__name__)

Status = OpsNotification.Status
OPS_SIGNING_SCOPE = "ops-webhook"
OPS_SESSION = "ops"
SEND_BATCH = 20
MAX_ATTEMPTS = 10
BACKOFF_BASE_SECONDS = 5
BACKOFF_CAP_SECONDS = 3600
# A notification being sent is held this long, so two dispatchers never send it both.
CLAIM_SECONDS = 60
SEND_TIMEOUT = (5, 10)


def ops_check_seconds() -> float:
    return settings.SWITCHYARD_OPS_CHECK_SECONDS


def _configured() -> bool:
    return bool(settings.SWITCHYARD_OPS_WEBHOOK_URL or settings.SWITCHYARD_OPS_EMAILS)


def ops_notify(*, type: str, subject: str, data: dict) -> OpsNotification | None:
    """Record a notification to send, or count a repeat of one sent within the window. Never
    raises a database error at the caller (a breaker's transition must not fail for it)."""
    now = timezone.now()
    window = now - timedelta(seconds=settings.SWITCHYARD_OPS_NOTIFY_WINDOW_SECONDS)
    try:
        recent = OpsNotification.objects.filter(type=type, subject=subject, created_at__gte=window)
        if recent.update(repeats=F("repeats") + 1):
            return None
        pending = _configured()
        notification = OpsNotification.objects.create(
            type=type,
            subject=subject[:200],
            data=data,
            status=Status.PENDING if pending else Status.NOT_SENT,
            next_attempt_at=now if pending else None,
        )
    except DatabaseError:
        logger.exception("ops.notify_failed", type=type, subject=subject)
        return None
    logger.warning("ops.notification", type=type, subject=subject, notification=notification.pk)
    return notification


def ops_notifications_send() -> int:
    """The dispatcher step: send the due notifications (a few per pass). Returns how many went."""
    now = timezone.now()
    due = OpsNotification.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
    sent = 0
    for notification in due.order_by("next_attempt_at")[:SEND_BATCH]:
        claimed = OpsNotification.objects.filter(
            pk=notification.pk, status=Status.PENDING, next_attempt_at=notification.next_attempt_at
        ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
        if claimed:
            sent += _deliver(notification)
    return sent


def _deliver(notification: OpsNotification) -> bool:
    """One attempt at the webhook and, once, the emails; the row settles or is rescheduled."""
    now = timezone.now()
    notification.attempts += 1
    error = ""
    if settings.SWITCHYARD_OPS_WEBHOOK_URL:
        try:
            _post(notification)
        except Exception as exc:  # any failure is retried; its class and message are kept
            error = f"{exc.__class__.__name__}: {exc}"[:2000]
    if settings.SWITCHYARD_OPS_EMAILS and notification.emailed_at is None:
        try:
            _email(notification)
            notification.emailed_at = now
        except Exception as exc:
            error = (error + f" email: {exc.__class__.__name__}: {exc}").strip()[:2000]
    if not error:
        notification.status, notification.sent_at, notification.next_attempt_at = (
            Status.SENT,
            now,
            None,
        )
    elif notification.attempts >= MAX_ATTEMPTS:
        notification.status, notification.next_attempt_at = Status.FAILED, None
    else:
        delay = min(BACKOFF_BASE_SECONDS * 2 ** (notification.attempts - 1), BACKOFF_CAP_SECONDS)
        notification.next_attempt_at = now + timedelta(seconds=delay)
    notification.last_error = error
    notification.save(
        update_fields=[
            "attempts",
            "status",
            "sent_at",
            "emailed_at",
            "next_attempt_at",
            "last_error",
        ]
    )
    log = logger.info if not error else logger.warning
    log(
        "ops.sent" if not error else "ops.send_failed",
        type=notification.type,
        notification=notification.pk,
        attempt=notification.attempts,
        error=error,
    )
    return not error


def envelope(notification: OpsNotification) -> bytes:
    """The Standard Webhooks payload: ``type``, ``timestamp``, ``data``."""
    payload = {
        "type": notification.type,
        "timestamp": notification.created_at.isoformat().replace("+00:00", "Z"),
        "data": {"subject": notification.subject, **notification.data},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


@sensitive_variables("signing")
def _post(notification: OpsNotification) -> None:
    url = settings.SWITCHYARD_OPS_WEBHOOK_URL
    credential = _signing_credential()
    signing = credential_verification_secrets(credential=credential) if credential else []
    if not signing:
        raise RuntimeError("No ops signing secret: run `manage.py ops_webhook_secret` first.")
    # Checked now (a name may resolve elsewhere than before); the connection checks again.
    egress.destination_check(url)
    body = envelope(notification)
    headers = sign_headers(
        msg_id=f"ops_{notification.pk}", body=body, secrets=[f["secret"] for _, f in signing]
    )
    headers["Content-Type"] = "application/json"
    response = egress.session_for(OPS_SESSION).post(
        url, data=body, headers=headers, timeout=SEND_TIMEOUT
    )
    for version, _ in signing:
        credential_version_mark_used(credential=credential, version=version)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"The ops webhook answered HTTP {response.status_code}.")


def _email(notification: OpsNotification) -> None:
    data = {"subject": notification.subject, **notification.data}
    send_mail(
        subject=f"[Switchyard] {notification.type}: {notification.subject}",
        message=json.dumps({"type": notification.type, "data": data}, indent=2),
        from_email=None,
        recipient_list=settings.SWITCHYARD_OPS_EMAILS,
    )


def _signing_credential() -> Credential | None:
    return Credential.objects.filter(
        provider=StandardWebhooksProvider.key,
        purpose=Credential.Purpose.SUBSCRIPTION_SIGNING,
        scope_key=OPS_SIGNING_SCOPE,
        enabled=True,
    ).first()


@sensitive_variables("secret")
def ops_signing_secret_rotate(*, grace_seconds: int, created_by=None) -> str:
    """A new ops signing secret (``whsec_…``), returned once: the first one, or a rotation of
    the current one (the previous keeps signing during ``grace_seconds``)."""
    secret = "whsec_" + base64.b64encode(random_secrets.token_bytes(24)).decode()
    credential = _signing_credential()
    if credential is None:
        credential_create_owned(
            provider=StandardWebhooksProvider.key,
            purpose=Credential.Purpose.SUBSCRIPTION_SIGNING,
            owner_scope=OPS_SIGNING_SCOPE,
            label="Signing secret of the operational webhook",
            fields={"secret": secret},
            created_by=created_by,
        )
    else:
        credential_rotate(
            credential=credential,
            fields={"secret": secret},
            grace_seconds=grace_seconds,
            created_by=created_by,
            reason="ops webhook secret rotated",
            owned=True,
        )
    return secret
