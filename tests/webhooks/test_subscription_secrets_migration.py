"""The data migration that moves subscription secrets into the credentials vault: run between
real schema states (MigrationExecutor), on rows written the way the old code wrote them."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from credentials.crypto import Keyring, generate_key, keyring
from credentials.models import Credential, CredentialAuditEntry, CredentialVersion
from credentials.services import version_decrypt
from webhooks.models import Subscription
from webhooks.selectors import _signing_secrets
from webhooks.services import subscription_rotate_secret

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("webhooks", "0004_endpoint_tolerance")]
K1, K2 = generate_key(), generate_key()


def old_aad(subscription_id: int, version: int) -> bytes:
    """``webhooks.selectors.secret_aad`` before the vault moved."""
    return f"switchyard.subscription-secret.v1|{subscription_id}|{version}".encode()


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.fixture
def old_schema(settings):
    """The database as it was before the vault moved (webhooks at 0004), and back to the
    latest schema afterwards whatever the test did (with keys that decrypt what it wrote)."""
    settings.SWITCHYARD_ENCRYPTION_KEYS = [K1]
    settings.SWITCHYARD_USES_DEVELOPMENT_KEY = False
    executor = _migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    settings.SWITCHYARD_ENCRYPTION_KEYS = [K1]
    _migrate(_latest())


def _old_secret(apps, subscription, version: int, secret: str, expires_at=None):
    """A SubscriptionSecret row exactly as webhooks.services._secret_add wrote it."""
    ring = keyring()
    key_id, ciphertext = ring.encrypt(secret.encode(), aad=old_aad(subscription.pk, version))
    row = apps.get_model("webhooks", "SubscriptionSecret").objects.create(
        subscription=subscription,
        version=version,
        key_id=key_id,
        ciphertext=ciphertext,
        hint=f"…{ring.fingerprint(secret.encode())[-4:]}",
        expires_at=expires_at,
    )
    return row


def _old_world(apps):
    Region = apps.get_model("customers", "Region")
    Customer = apps.get_model("customers", "Customer")
    OldSubscription = apps.get_model("webhooks", "Subscription")
    region = Region.objects.create(code="eu", name="EU")
    acme = Customer.objects.create(slug="acme", name="Acme", region=region, tier="premium")
    now = timezone.now()
    rotated = OldSubscription.objects.create(
        url="http://127.0.0.1:9/a", event_types=["*"], allow_private=True, customer=acme
    )
    _old_secret(
        apps, rotated, 1, "whsec_b25lLW9uZS1vbmUtb25lLW9uZS1vbmU=", now - timedelta(hours=1)
    )
    _old_secret(
        apps, rotated, 2, "whsec_dHdvLXR3by10d28tdHdvLXR3by10d28=", now + timedelta(hours=2)
    )
    _old_secret(apps, rotated, 3, "whsec_dGhyZWUtdGhyZWUtdGhyZWUtdGhyZWU=")
    single = OldSubscription.objects.create(
        url="http://127.0.0.1:9/b", event_types=["trello.*"], allow_private=True
    )
    _old_secret(apps, single, 1, "whsec_c2luZ2xlLXNpbmdsZS1zaW5nbGUtc2luZ2w=")
    bare = OldSubscription.objects.create(
        url="http://127.0.0.1:9/c", event_types=["*"], allow_private=True
    )
    return acme.pk, rotated.pk, single.pk, bare.pk, now


def test_migration_moves_secrets_into_the_vault(old_schema, settings):
    acme_id, rotated_id, single_id, bare_id, then = _old_world(old_schema)

    # A master key rotation happened meanwhile: the secrets were written under K1.
    settings.SWITCHYARD_ENCRYPTION_KEYS = [K2, K1]
    _migrate(_latest())

    assert "webhooks_subscriptionsecret" not in connection.introspection.table_names()
    primary = Keyring([K2]).primary_id
    rotated = Subscription.objects.get(pk=rotated_id)
    credential = rotated.signing_credential
    assert (credential.provider, credential.purpose, credential.scope_key) == (
        "standard_webhooks",
        "subscription_signing",
        f"subscription:{rotated_id}",
    )
    assert credential.customer_id == acme_id and credential.enabled
    versions = {v.version: v for v in credential.versions.all()}
    assert {n: v.state for n, v in versions.items()} == {
        1: CredentialVersion.State.REVOKED,
        2: CredentialVersion.State.PREVIOUS,
        3: CredentialVersion.State.CURRENT,
    }
    assert abs(versions[2].grace_until - (then + timedelta(hours=2))) < timedelta(seconds=1)
    assert abs(versions[1].revoked_at - (then - timedelta(hours=1))) < timedelta(seconds=1)
    assert (bytes(versions[1].ciphertext), versions[1].key_id) == (b"", "")
    assert {versions[2].key_id, versions[3].key_id} == {primary}  # re-encrypted under K2
    assert versions[3].hint.startswith("…")
    # The same signing secrets, current first, decrypted by the vault with its own AAD.
    assert [secret for _, secret in _signing_secrets(rotated)] == [
        "whsec_dGhyZWUtdGhyZWUtdGhyZWUtdGhyZWU=",
        "whsec_dHdvLXR3by10d28tdHdvLXR3by10d28=",
    ]
    assert version_decrypt(versions[3]) == {"secret": "whsec_dGhyZWUtdGhyZWUtdGhyZWUtdGhyZWU="}
    audit = CredentialAuditEntry.objects.get(credential=credential)
    assert (audit.action, audit.to_version, audit.actor) == ("create", 3, "system")

    single = Subscription.objects.get(pk=single_id)
    assert single.signing_credential.customer_id is None
    assert [s for _, s in _signing_secrets(single)] == [
        "whsec_c2luZ2xlLXNpbmdsZS1zaW5nbGUtc2luZ2w="
    ]
    assert Subscription.objects.get(pk=bare_id).signing_credential is None
    assert Credential.objects.count() == 2

    # Settled in the vault: a rotation continues the version numbers, with the old key gone.
    settings.SWITCHYARD_ENCRYPTION_KEYS = [K2]
    new = subscription_rotate_secret(subscription=rotated, grace_seconds=0)
    assert [s for _, s in _signing_secrets(Subscription.objects.get(pk=rotated_id))] == [new]
    assert credential.versions.get(state="current").version == 4


def test_migration_fails_clearly_without_the_master_keys(old_schema, settings):
    _old_world(old_schema)
    settings.SWITCHYARD_ENCRYPTION_KEYS = [K2]  # K1, which encrypted them, is missing
    with pytest.raises(ImproperlyConfigured) as failure:
        _migrate(_latest())
    message = str(failure.value)
    assert "SWITCHYARD_ENCRYPTION_KEYS" in message
    assert Keyring([K1]).primary_id in message
    assert "nothing was changed" in message
    # Nothing moved: the old rows are all there, no credential was made.
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM webhooks_subscriptionsecret")
        assert cursor.fetchone()[0] == 4
    assert not Credential.objects.exists()

    settings.SWITCHYARD_ENCRYPTION_KEYS = []  # no keys at all: named just as clearly
    with pytest.raises(ImproperlyConfigured, match="SWITCHYARD_ENCRYPTION_KEYS"):
        _migrate(_latest())


def test_migration_needs_no_key_without_subscription_secrets(old_schema, settings):
    apps = old_schema
    apps.get_model("webhooks", "Subscription").objects.create(
        url="http://127.0.0.1:9/c", event_types=["*"], allow_private=True
    )
    settings.SWITCHYARD_ENCRYPTION_KEYS = []
    _migrate(_latest())
    assert Subscription.objects.get().signing_credential is None
    assert "webhooks_subscriptionsecret" not in connection.introspection.table_names()


def test_migrating_back_restores_the_live_secrets(old_schema, settings):
    _, rotated_id, _, _, _ = _old_world(old_schema)
    _migrate(_latest())
    credential_id = Subscription.objects.get(pk=rotated_id).signing_credential_id
    executor = _migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    rows = apps.get_model("webhooks", "SubscriptionSecret").objects.filter(
        subscription_id=rotated_id
    )
    ring = keyring()
    restored = {
        row.version: (
            ring.decrypt(
                row.key_id, row.ciphertext, aad=old_aad(rotated_id, row.version), what="test"
            ).decode(),
            row.expires_at is None,
        )
        for row in rows
    }
    assert restored == {
        2: ("whsec_dHdvLXR3by10d28tdHdvLXR3by10d28=", False),
        3: ("whsec_dGhyZWUtdGhyZWUtdGhyZWUtdGhyZWU=", True),
    }
    # The vault's copies are gone; the credential stays, disabled, for its audit trail.
    versions = apps.get_model("credentials", "CredentialVersion").objects
    assert set(versions.filter(credential_id=credential_id).values_list("state", "key_id")) == {
        ("revoked", "")
    }
