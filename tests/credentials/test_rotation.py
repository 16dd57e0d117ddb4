from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from credentials.models import CredentialAuditEntry, CredentialVersion
from credentials.services import (
    CredentialConflict,
    credential_create,
    credential_resolve,
    credential_revoke,
    credential_rotate,
    credential_verification_secrets,
    credential_version_mark_used,
    credential_versions_expire,
)
from integrations.dispatcher import default_steps

NEW = {"api_key": "b" * 32, "token": "n" * 64}
State = CredentialVersion.State


def _states(credential):
    return {v.version: v.state for v in credential.versions.all()}


def test_create_validates_against_the_provider_registry(acme):
    cases = [
        ({"provider": "nope", "purpose": "api", "fields": {}}, "provider"),
        ({"provider": "trello", "purpose": "nope", "fields": {}}, "purpose"),
        ({"provider": "trello", "purpose": "api", "fields": {"api_key": "k"}}, "fields.token"),
        (
            {"provider": "trello", "purpose": "api", "fields": {**NEW, "password": "x"}},
            "fields.password",
        ),
        (
            {"provider": "shopify", "purpose": "webhook_signing", "fields": {"secret": ""}},
            "fields.secret",
        ),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as failure:
            credential_create(customer=acme, **kwargs)
        assert field in failure.value.message_dict, kwargs


def test_customer_scope_takes_no_region_or_tier(acme, region_eu):
    with pytest.raises(ValidationError) as failure:
        credential_create(
            provider="trello", purpose="api", customer=acme, region=region_eu, fields=NEW
        )
    assert "customer" in failure.value.message_dict


def test_one_enabled_credential_per_scope(trello_acme, acme, region_eu):
    with pytest.raises(CredentialConflict, match="rotate it instead"):
        credential_create(provider="trello", purpose="api", customer=acme, fields=NEW)
    # Another purpose or scope is fine, and so is a new one once the old is revoked.
    credential_create(
        provider="trello", purpose="webhook_signing", customer=acme, fields={"secret": "s"}
    )
    credential_create(provider="trello", purpose="api", region=region_eu, fields=NEW)
    credential_revoke(credential=trello_acme, include_current=True)
    credential_create(provider="trello", purpose="api", customer=acme, fields=NEW)


def test_rotation_moves_states_and_audits(trello_acme, acme, admin_user):
    before = timezone.now()
    new = credential_rotate(
        credential=trello_acme, fields=NEW, grace_seconds=3600, created_by=admin_user, reason="x"
    )
    assert (new.version, new.state) == (2, State.CURRENT)
    assert _states(trello_acme) == {1: State.PREVIOUS, 2: State.CURRENT}
    previous = trello_acme.versions.get(version=1)
    assert before + timedelta(seconds=3590) < previous.grace_until < before + timedelta(hours=2)
    assert credential_resolve(provider="trello", customer=acme).fields == NEW
    assert [v for v, _ in credential_verification_secrets(credential=trello_acme)] == [2, 1]
    assert new.created_by == "user:admin"
    entry = trello_acme.audit_entries.first()
    assert (entry.action, entry.from_version, entry.to_version, entry.actor, entry.reason) == (
        CredentialAuditEntry.Action.ROTATE,
        1,
        2,
        "user:admin",
        "x",
    )
    trello_acme.refresh_from_db()
    assert trello_acme.rotated_at is not None


def test_zero_grace_revokes_the_old_version_at_once(trello_acme):
    credential_rotate(credential=trello_acme, fields=NEW, grace_seconds=0)
    old = trello_acme.versions.get(version=1)
    assert old.state == State.REVOKED
    assert bytes(old.ciphertext) == b""
    assert [v for v, _ in credential_verification_secrets(credential=trello_acme)] == [2]


def test_negative_grace_is_refused(trello_acme):
    with pytest.raises(ValidationError) as failure:
        credential_rotate(credential=trello_acme, fields=NEW, grace_seconds=-1)
    assert "grace_seconds" in failure.value.message_dict
    assert _states(trello_acme) == {1: State.CURRENT}


def test_rotation_validates_fields(trello_acme):
    with pytest.raises(ValidationError) as failure:
        credential_rotate(credential=trello_acme, fields={"api_key": "x"})
    assert "fields.token" in failure.value.message_dict


def test_expiry_revokes_previous_versions_after_grace(trello_acme):
    credential_rotate(credential=trello_acme, fields=NEW, grace_seconds=60)
    assert credential_versions_expire() == 0
    trello_acme.versions.filter(version=1).update(grace_until=timezone.now() - timedelta(seconds=1))
    assert [v for v, _ in credential_verification_secrets(credential=trello_acme)] == [2]
    assert credential_versions_expire() == 1
    assert credential_versions_expire() == 0
    assert _states(trello_acme) == {1: State.REVOKED, 2: State.CURRENT}
    entry = trello_acme.audit_entries.first()
    assert (entry.action, entry.from_version, entry.actor) == ("expire", 1, "system")


def test_expiry_is_a_dispatcher_step():
    steps = {step.name: step for step in default_steps()}
    assert steps["expire_credential_versions"].run is credential_versions_expire


def test_revoke_ends_grace_now(trello_acme):
    credential_rotate(credential=trello_acme, fields=NEW)
    credential_rotate(credential=trello_acme, fields={**NEW, "token": "3"})
    assert credential_revoke(credential=trello_acme, reason="leaked") == 2
    assert _states(trello_acme) == {1: State.REVOKED, 2: State.REVOKED, 3: State.CURRENT}
    revokes = trello_acme.audit_entries.filter(action="revoke")
    assert sorted(revokes.values_list("from_version", flat=True)) == [1, 2]
    assert set(revokes.values_list("reason", flat=True)) == {"leaked"}


def test_rotating_a_revoked_credential_conflicts(trello_acme):
    credential_revoke(credential=trello_acme, include_current=True)
    assert _states(trello_acme) == {1: State.REVOKED}
    with pytest.raises(CredentialConflict, match="revoked"):
        credential_rotate(credential=trello_acme, fields=NEW)


def test_rotating_with_no_current_version_conflicts(trello_acme):
    trello_acme.versions.update(state=State.REVOKED)
    with pytest.raises(CredentialConflict, match="no current version"):
        credential_rotate(credential=trello_acme, fields=NEW)


def test_database_refuses_two_current_versions(trello_acme):
    version = trello_acme.versions.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        CredentialVersion.objects.create(
            credential=trello_acme, version=2, state=State.CURRENT, fingerprint="x"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        CredentialVersion.objects.create(
            credential=trello_acme, version=version.version, state=State.PREVIOUS
        )


def test_stale_rotation_cannot_make_a_second_current(trello_acme):
    """A rotation that read the old current before another rotation committed still leaves one
    current: it re-reads under the lock, and the conditional update/constraint back it up."""
    stale = type(trello_acme).objects.get(pk=trello_acme.pk)
    credential_rotate(credential=trello_acme, fields=NEW)
    credential_rotate(credential=stale, fields={**NEW, "token": "3"})
    assert list(
        trello_acme.versions.filter(state=State.CURRENT).values_list("version", flat=True)
    ) == [3]


@pytest.fixture
def fresh_process(monkeypatch):
    """As if in another process: no per-process memo of last writes, an empty local cache."""
    from django.core.cache import cache

    from credentials.services import resolution as services

    monkeypatch.setattr(services, "_last_marked", {})
    cache.clear()


def test_mark_used_writes_at_most_once_a_minute(
    trello_acme, django_assert_num_queries, fresh_process, monkeypatch
):
    from django.core.cache import cache

    from credentials.services import resolution as services

    version = trello_acme.versions.get()
    credential_version_mark_used(version_id=version.pk)
    version.refresh_from_db()
    first = version.last_used_at
    assert first is not None
    with django_assert_num_queries(0):
        credential_version_mark_used(version_id=version.pk)
    # Another process (no memo) sharing no cache: the database condition still holds.
    monkeypatch.setattr(services, "_last_marked", {})
    cache.clear()
    credential_version_mark_used(credential=trello_acme, version=1)
    version.refresh_from_db()
    assert version.last_used_at == first


def test_mark_used_by_number_skips_lookup_and_cache_within_the_minute(
    trello_acme, django_assert_num_queries, fresh_process, monkeypatch
):
    """The webhook receiver's call: after the first write, neither the version lookup nor the
    shared cache (a Redis round trip in production) is touched until the minute is over."""
    from django.core.cache import cache

    from credentials.services import resolution as services

    credential_version_mark_used(credential=trello_acme, version=1)
    with (
        django_assert_num_queries(0),
        mock.patch.object(cache, "add", side_effect=AssertionError("cache used")),
    ):
        credential_version_mark_used(credential=trello_acme, version=1)
    # A minute later (in this process's clock and in the database) it writes again.
    version = trello_acme.versions.get()
    earlier = timezone.now() - timedelta(minutes=2)
    type(version).objects.filter(pk=version.pk).update(last_used_at=earlier)
    cache.clear()
    later = services.time.monotonic() + services.LAST_USED_RESOLUTION.total_seconds() + 1
    monkeypatch.setattr(services, "time", SimpleNamespace(monotonic=lambda: later))
    credential_version_mark_used(credential=trello_acme, version=1)
    version.refresh_from_db()
    assert version.last_used_at > earlier
