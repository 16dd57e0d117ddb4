"""Move every subscription signing secret into the credentials vault (one vault).

Each subscription's ``SubscriptionSecret`` rows become the versions of one credential of purpose
``subscription_signing`` (provider ``standard_webhooks``, scope ``subscription:<id>``, owned by
the subscription's customer): each secret is decrypted with its own associated data and key id,
then encrypted under the primary master key with the credential's associated data. Version
numbers are kept. The secret without ``expires_at`` (the newest) becomes ``current``, one still
signing becomes ``previous`` with ``grace_until`` = ``expires_at``, one already expired becomes
``revoked`` (its ciphertext is not kept).

It needs the master keys that encrypted the secrets (``SWITCHYARD_ENCRYPTION_KEYS``, as the web
processes have it). Without them it stops with a message naming the variable, before writing
anything; the migration's transaction leaves nothing half done. With no subscription secrets it
reads no key. The reverse moves the live versions back and revokes the vault's copies.
"""

import json
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import migrations
from django.utils import timezone

from credentials.crypto import DecryptionFailed, keyring

MIGRATION = "webhooks.0006_subscription_secrets_to_vault"
PROVIDER = "standard_webhooks"
PURPOSE = "subscription_signing"
# Only reachable for data the old code never wrote (two secrets without an expiry).
FALLBACK_GRACE = timedelta(hours=24)


def old_aad(subscription_id: int, version: int) -> bytes:
    """``webhooks.selectors.secret_aad`` as it was before this migration."""
    return f"switchyard.subscription-secret.v1|{subscription_id}|{version}".encode()


def credential_aad(credential, version: int) -> bytes:
    """``credentials.services._aad`` (v1): provider, purpose and scope are fixed for life."""
    return (
        f"switchyard.credential.v1|{credential.pk}|{version}|{credential.provider}|"
        f"{credential.purpose}|{credential.scope_key}"
    ).encode()


def fields_plaintext(secret: str) -> bytes:
    """A version's fields serialised as ``credentials.services._version_add`` does."""
    return json.dumps({"secret": secret}, sort_keys=True, separators=(",", ":")).encode()


def keys_missing(detail: str) -> ImproperlyConfigured:
    development = (
        " (this run uses the development key in var/, because SWITCHYARD_ENCRYPTION_KEYS is "
        "not set)"
        if getattr(settings, "SWITCHYARD_USES_DEVELOPMENT_KEY", False)
        else ""
    )
    return ImproperlyConfigured(
        f"Migration {MIGRATION} moves the subscription signing secrets into the credentials "
        f"vault and must decrypt them, but {detail}. Set SWITCHYARD_ENCRYPTION_KEYS to the "
        f"master keys the web processes use{development}, primary first, and run migrate "
        "again; nothing was changed."
    )


def usable_keyring():
    try:
        return keyring()
    except ImproperlyConfigured as exc:
        raise keys_missing(f"the master keys are not usable ({exc})") from None


def decrypt(ring, key_id: str, blob, *, aad: bytes, what: str) -> bytes:
    try:
        return ring.decrypt(key_id, blob, aad=aad, what=what)
    except DecryptionFailed:
        if key_id not in ring.key_ids:
            detail = (
                f"{what} was encrypted under master key {key_id or '(none)'}, which is not in "
                f"SWITCHYARD_ENCRYPTION_KEYS (its keys: {', '.join(ring.key_ids)})"
            )
        else:
            detail = f"{what} does not decrypt under master key {key_id} (tampered with?)"
        raise keys_missing(detail) from None


def forward(apps, schema_editor):
    Subscription = apps.get_model("webhooks", "Subscription")
    SubscriptionSecret = apps.get_model("webhooks", "SubscriptionSecret")
    Credential = apps.get_model("credentials", "Credential")
    CredentialVersion = apps.get_model("credentials", "CredentialVersion")
    CredentialAuditEntry = apps.get_model("credentials", "CredentialAuditEntry")

    rows = list(SubscriptionSecret.objects.order_by("subscription_id", "-version"))
    if not rows:
        return
    ring = usable_keyring()
    # Every secret is decrypted before anything is written: a missing key stops at once.
    secrets = {
        row.pk: decrypt(
            ring,
            row.key_id,
            row.ciphertext,
            aad=old_aad(row.subscription_id, row.version),
            what=f"subscription {row.subscription_id} secret v{row.version}",
        ).decode()
        for row in rows
    }
    by_subscription = defaultdict(list)
    for row in rows:
        by_subscription[row.subscription_id].append(row)  # newest first

    now = timezone.now()
    for subscription in Subscription.objects.filter(pk__in=by_subscription).order_by("pk"):
        versions = by_subscription[subscription.pk]
        credential = Credential.objects.create(
            provider=PROVIDER,
            purpose=PURPOSE,
            customer_id=subscription.customer_id,
            region=None,
            tier="",
            label=f"Signing secret of subscription #{subscription.pk}",
            allow_cross_region=False,
            enabled=True,
            scope_key=f"subscription:{subscription.pk}",
            rotated_at=versions[0].created_at if len(versions) > 1 else None,
        )
        has_current = False
        for row in versions:
            plaintext = fields_plaintext(secrets[row.pk])
            grace_until = revoked_at = None
            if row.expires_at is None and not has_current:
                state, has_current = "current", True
            elif row.expires_at is None:
                state, grace_until = "previous", now + FALLBACK_GRACE
            elif row.expires_at > now:
                state, grace_until = "previous", row.expires_at
            else:
                state, revoked_at = "revoked", row.expires_at
            if state == "revoked":
                key_id, ciphertext = "", b""
            else:
                key_id, ciphertext = ring.encrypt(
                    plaintext, aad=credential_aad(credential, row.version)
                )
            version = CredentialVersion.objects.create(
                credential=credential,
                version=row.version,
                state=state,
                ciphertext=ciphertext,
                key_id=key_id,
                fingerprint=ring.fingerprint(plaintext),
                created_by="system",
                grace_until=grace_until,
                revoked_at=revoked_at,
            )
            # auto_now_add stamped "now": keep when the secret was really made.
            CredentialVersion.objects.filter(pk=version.pk).update(created_at=row.created_at)
        CredentialAuditEntry.objects.create(
            credential=credential,
            action="create",
            to_version=versions[0].version,
            actor="system",
            reason=f"Moved from the subscription's own secret table by migration {MIGRATION}.",
        )
        Subscription.objects.filter(pk=subscription.pk).update(signing_credential=credential)
    SubscriptionSecret.objects.all().delete()


def backward(apps, schema_editor):
    Subscription = apps.get_model("webhooks", "Subscription")
    SubscriptionSecret = apps.get_model("webhooks", "SubscriptionSecret")
    Credential = apps.get_model("credentials", "Credential")
    CredentialVersion = apps.get_model("credentials", "CredentialVersion")

    subscriptions = list(
        Subscription.objects.exclude(signing_credential=None)
        .select_related("signing_credential")
        .order_by("pk")
    )
    if not subscriptions:
        return
    ring = None
    now = timezone.now()
    for subscription in subscriptions:
        credential = subscription.signing_credential
        live = CredentialVersion.objects.filter(
            credential=credential, state__in=["current", "previous"]
        ).exclude(key_id="")
        for version in live.order_by("-version"):
            ring = ring or usable_keyring()
            fields = json.loads(
                decrypt(
                    ring,
                    version.key_id,
                    version.ciphertext,
                    aad=credential_aad(credential, version.version),
                    what=f"credential {credential.pk} version {version.version}",
                )
            )
            secret = fields["secret"].encode()
            key_id, ciphertext = ring.encrypt(
                secret, aad=old_aad(subscription.pk, version.version)
            )
            SubscriptionSecret.objects.create(
                subscription=subscription,
                version=version.version,
                key_id=key_id,
                ciphertext=ciphertext,
                hint=f"…{ring.fingerprint(secret)[-4:]}",
                expires_at=None if version.state == "current" else version.grace_until,
            )
        # The vault's copies go; the credential stays, disabled, for its audit trail.
        CredentialVersion.objects.filter(credential=credential).exclude(state="revoked").update(
            state="revoked", revoked_at=now, grace_until=None, ciphertext=b"", key_id=""
        )
        Credential.objects.filter(pk=credential.pk).update(enabled=False)
        Subscription.objects.filter(pk=subscription.pk).update(signing_credential=None)


class Migration(migrations.Migration):

    dependencies = [
        ('credentials', '0002_subscription_signing_purpose'),
        ('webhooks', '0005_subscription_signing_credential'),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
