"""The conditions no single event reveals, checked by a dispatcher step: dead letters piling up,
previous credential versions still in use near the end of their grace, versions still
encrypted under an old master key. Each notifies once per subject per window (``ops_notify``)
and reads through an index, a bounded number of rows."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from credentials.crypto import keyring
from credentials.models import CredentialVersion
from integrations.deliveries.models import Delivery
from integrations.models import OpsNotification
from integrations.ops.services import ops_notify

__all__ = ("ops_conditions_check",)

Type = OpsNotification.Type
# At most this many grace versions are named per check; the rest wait for the next one.
GRACE_VERSIONS_PER_CHECK = 20


def ops_conditions_check() -> None:
    dead_letters_check()
    grace_in_use_check()
    master_key_check()


def dead_letters_check() -> None:
    """``dead_letters.rising``: at least THRESHOLD deliveries became dead letters within the
    last WINDOW minutes (counted up to the threshold only, on the (status, finished_at) index)."""
    threshold = settings.SWITCHYARD_OPS_DEAD_LETTERS_THRESHOLD
    minutes = settings.SWITCHYARD_OPS_DEAD_LETTERS_WINDOW_MINUTES
    if threshold <= 0:
        return
    since = timezone.now() - timedelta(minutes=minutes)
    recent = Delivery.objects.filter(status=Delivery.Status.DEAD, finished_at__gte=since)
    found = len(recent.order_by().values_list("pk")[:threshold])
    if found >= threshold:
        ops_notify(
            type=Type.DEAD_LETTERS_RISING,
            subject="deliveries",
            data={"dead_letters": found, "window_minutes": minutes, "threshold": threshold},
        )


def grace_in_use_check() -> None:
    """``credential.grace_in_use``: a previous version used within the last hour whose grace
    ends within SWITCHYARD_OPS_GRACE_WARN_HOURS: whoever still uses it is about to fail."""
    hours = settings.SWITCHYARD_OPS_GRACE_WARN_HOURS
    if hours <= 0:
        return
    now = timezone.now()
    versions = CredentialVersion.objects.filter(
        state=CredentialVersion.State.PREVIOUS,
        grace_until__gt=now,
        grace_until__lte=now + timedelta(hours=hours),
        last_used_at__gte=now - timedelta(hours=1),
    ).select_related("credential")
    for version in versions.order_by("grace_until")[:GRACE_VERSIONS_PER_CHECK]:
        credential = version.credential
        ops_notify(
            type=Type.CREDENTIAL_GRACE_IN_USE,
            subject=f"credential:{credential.pk}:v{version.version}",
            data={
                "credential": credential.pk,
                "provider": credential.provider,
                "purpose": credential.purpose,
                "version": version.version,
                "grace_until": version.grace_until.isoformat(),
                "last_used_at": version.last_used_at.isoformat(),
            },
        )


def master_key_check() -> None:
    """``master_key.in_use``: at least THRESHOLD unrevoked versions are still encrypted under
    a master key other than the primary (run ``manage.py credentials_reencrypt``)."""
    threshold = settings.SWITCHYARD_OPS_MASTER_KEY_MIN_VERSIONS
    if threshold <= 0:
        return
    primary = keyring().primary_id
    old = (
        CredentialVersion.objects.exclude(key_id=primary)
        .exclude(state=CredentialVersion.State.REVOKED)
        .values_list("key_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    for key_id, count in old:
        if count >= threshold:
            ops_notify(
                type=Type.MASTER_KEY_IN_USE,
                subject=f"key:{key_id}",
                data={"key_id": key_id, "versions": count, "primary_key_id": primary},
            )
