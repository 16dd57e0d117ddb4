"""Writes of the credentials vault, plus resolution (the one read that decrypts).

Plaintext exists only inside these functions and in ``ResolvedCredential.fields`` handed to the
caller; it is never logged, never put in an exception message and never stored unencrypted.
``sensitive_variables`` keeps it out of Django's error reports, which show frame locals.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials.crypto import keyring
from credentials.exceptions import CredentialConflict, CredentialNotConfigured
from credentials.models import (
    OWNED_PURPOSES,
    Credential,
    CredentialAuditEntry,
    CredentialVersion,
)
from customers.services import actor_label
from integrations.providers.types import CredentialField
from integrations.registry import ProviderNotRegistered, get_provider

if TYPE_CHECKING:
    from customers.models import Customer, Region

__all__ = (
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "CredentialConflict",
    "CredentialNotConfigured",
    "ResolvedCredential",
    "credential_create",
    "credential_create_owned",
    "credential_resolve",
    "credential_revoke",
    "credential_rotate",
    "credential_update",
    "credential_verification_secrets",
    "credential_version_mark_used",
    "credential_versions_expire",
    "credential_versions_reencrypt",
    "version_decrypt",
)

logger = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 24 * 3600
# An old secret accepted for longer than a month is no longer being rotated out.
MAX_GRACE_SECONDS = 30 * 24 * 3600
MAX_FIELD_CHARS = 8192
# Recording every use would turn each outbound call into a write; a minute is precise enough
# to tell an operator when a previous version stopped being used.
LAST_USED_RESOLUTION = timedelta(minutes=1)
State = CredentialVersion.State
# The fields of owned credentials, which no provider declares (nobody may create them directly).
OWNED_FIELDS = {
    Credential.Purpose.SUBSCRIPTION_SIGNING: [
        CredentialField("secret", help_text="Standard Webhooks signing secret (whsec_…).")
    ],
}


@dataclass(frozen=True)
class ResolvedCredential:
    credential_id: int
    version_id: int
    version: int
    # Kept out of repr so that logging or printing a resolution never shows a secret.
    fields: dict[str, str] = field(repr=False)
    # Global, region or tier: it serves several customers, so it may be sent only to the
    # provider's own hosts or a trusted integration (DESIGN §10).
    shared: bool = False


def _aad(credential: Credential, version: int) -> bytes:
    """Associated data: decrypting succeeds only in the row (and scope) it was written for."""
    return (
        f"switchyard.credential.v1|{credential.pk}|{version}|{credential.provider}|"
        f"{credential.purpose}|{credential.scope_key}"
    ).encode()


@sensitive_variables("fields", "value")
def _validated_fields(
    *, provider: str, purpose: str, fields: dict, owned: bool = False
) -> dict[str, str]:
    """The fields a provider declares for a purpose; errors name the offending field. Owned
    purposes are accepted only from their owner's path (``owned``)."""
    if purpose in OWNED_PURPOSES:
        if not owned:
            raise ValidationError(
                {
                    "purpose": f"A {purpose} credential belongs to a subscription: it is created "
                    "with the subscription and rotated through its rotate-secret."
                }
            )
        declared = OWNED_FIELDS
    else:
        try:
            declared = get_provider(provider).credential_fields
        except ProviderNotRegistered as exc:
            raise ValidationError({"provider": str(exc)}) from None
    if purpose not in declared:
        known = ", ".join(declared) or "none"
        raise ValidationError(
            {"purpose": f"Provider '{provider}' takes no '{purpose}' credential (takes: {known})."}
        )
    if not isinstance(fields, dict):
        raise ValidationError({"fields": "Expected an object of credential fields."})
    names = {f.name for f in declared[purpose]}
    errors = {}
    for name in sorted(set(fields) - names):
        errors[f"fields.{name}"] = (
            f"Unknown field for {provider} {purpose}; expected: {', '.join(sorted(names))}."
        )
    for declared_field in declared[purpose]:
        value = fields.get(declared_field.name, "")
        if not isinstance(value, str):
            errors[f"fields.{declared_field.name}"] = "Must be a string."
        elif len(value) > MAX_FIELD_CHARS:
            errors[f"fields.{declared_field.name}"] = f"At most {MAX_FIELD_CHARS} characters."
        elif declared_field.required and not value:
            errors[f"fields.{declared_field.name}"] = "This field is required."
    if errors:
        raise ValidationError(errors)
    return {name: value for name, value in fields.items() if value}


@sensitive_variables("fields", "plaintext")
def _version_add(
    *, credential: Credential, number: int, fields: dict[str, str], state: str, created_by
) -> CredentialVersion:
    plaintext = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    ring = keyring()
    key_id, ciphertext = ring.encrypt(plaintext, aad=_aad(credential, number))
    return CredentialVersion.objects.create(
        credential=credential,
        version=number,
        state=state,
        ciphertext=ciphertext,
        key_id=key_id,
        fingerprint=ring.fingerprint(plaintext),
        created_by=actor_label(created_by),
    )


def _audit(*, credential, action, actor, from_version=None, to_version=None, reason=""):
    CredentialAuditEntry.objects.create(
        credential=credential,
        action=action,
        from_version=from_version,
        to_version=to_version,
        actor=actor,
        reason=reason,
    )
    logger.info(
        "credentials.%s credential=%s provider=%s from=%s to=%s actor=%s",
        action,
        credential.pk,
        credential.provider,
        from_version,
        to_version,
        actor,
    )


@sensitive_variables()
def _plaintext(version: CredentialVersion) -> bytes:
    return keyring().decrypt(
        version.key_id,
        version.ciphertext,
        aad=_aad(version.credential, version.version),
        what=f"credential {version.credential_id} version {version.version}",
    )


@sensitive_variables()
def version_decrypt(version: CredentialVersion) -> dict[str, str]:
    """Decrypt one version's fields; ``DecryptionFailed`` names the row, never the secret."""
    return json.loads(_plaintext(version))


@sensitive_variables("fields")
def credential_create(
    *,
    provider: str,
    purpose: str,
    customer: Customer | None = None,
    region: Region | None = None,
    tier: str | None = None,
    label: str = "",
    fields: dict[str, str],
    created_by=None,
    allow_cross_region: bool = False,
) -> Credential:
    """Create a credential with version 1 current. One enabled credential per provider, purpose
    and scope: a second one is a ``CredentialConflict`` (rotate the existing one instead)."""
    fields = _validated_fields(provider=provider, purpose=purpose, fields=fields)
    if customer is not None and (region is not None or tier):
        raise ValidationError(
            {"customer": "A customer-specific credential takes no region or tier."}
        )
    credential = Credential(
        provider=provider,
        purpose=purpose,
        customer=customer,
        region=region,
        tier=tier or "",
        label=label,
        allow_cross_region=allow_cross_region,
    )
    credential.scope_key = credential.compute_scope_key()
    return _first_version_save(
        credential,
        fields=fields,
        created_by=created_by,
        conflict=f"An enabled {provider} {purpose} credential already exists for "
        f"{credential.scope_label}; rotate it instead.",
    )


@sensitive_variables("fields")
def _first_version_save(
    credential: Credential, *, fields: dict[str, str], created_by, conflict: str
) -> Credential:
    """Save a new credential with version 1 current, audited; ``conflict`` is the message when
    its scope already has an enabled credential."""
    credential.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            credential.save()
            _version_add(
                credential=credential,
                number=1,
                fields=fields,
                state=State.CURRENT,
                created_by=created_by,
            )
    except IntegrityError:
        raise CredentialConflict(conflict) from None
    _audit(
        credential=credential,
        action=CredentialAuditEntry.Action.CREATE,
        actor=actor_label(created_by),
        to_version=1,
    )
    return credential


@sensitive_variables("fields")
def credential_create_owned(
    *,
    provider: str,
    purpose: str,
    owner_scope: str,
    customer: Customer | None = None,
    label: str = "",
    fields: dict[str, str],
    created_by=None,
) -> Credential:
    """A credential owned by another object (``OWNED_PURPOSES``), whose scope is that object
    (``owner_scope``, e.g. ``subscription:7``). ``customer`` is the owner's customer, so tenancy
    checks treat it like the customer's own credentials; it never takes part in resolution."""
    if purpose not in OWNED_PURPOSES:
        raise ValueError(f"{purpose} is not an owned purpose; use credential_create.")
    fields = _validated_fields(provider=provider, purpose=purpose, fields=fields, owned=True)
    credential = Credential(
        provider=provider, purpose=purpose, customer=customer, label=label, scope_key=owner_scope
    )
    return _first_version_save(
        credential,
        fields=fields,
        created_by=created_by,
        conflict=f"An enabled {provider} {purpose} credential already exists for {owner_scope}.",
    )


def credential_update(
    *, credential: Credential, label: str, allow_cross_region: bool
) -> Credential:
    """Change what may be changed after creation. Provider, purpose and scope are part of the
    ciphertext's associated data, so they are fixed for the credential's life."""
    credential.label = label
    credential.allow_cross_region = allow_cross_region
    credential.full_clean(validate_constraints=False)
    credential.save(update_fields=["label", "allow_cross_region", "updated_at"])
    return credential


@sensitive_variables("fields")
def credential_rotate(
    *,
    credential: Credential,
    fields: dict[str, str],
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
    created_by=None,
    reason: str = "",
    owned: bool = False,
    cap_previous_grace: bool = False,
) -> CredentialVersion:
    """Make new fields the current version. The old current stays accepted as ``previous`` until
    ``grace_until`` (0 revokes it at once).

    An owned credential (a subscription's signing secret) is rotated only by its owner, which
    says so with ``owned``. ``cap_previous_grace`` also ends older previous versions' grace no
    later than the one retired now (0 revokes them too): "the old secrets keep signing for
    ``grace_seconds``", as a subscription's rotation promises.

    Runs under a row lock on the credential (a write lock on SQLite's IMMEDIATE transactions) and
    moves states with conditional updates, so concurrent rotations serialise; the partial unique
    constraints are the last line of defence against two current versions."""
    if grace_seconds is None or not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValidationError(
            {"grace_seconds": f"Between 0 and {MAX_GRACE_SECONDS} seconds (30 days)."}
        )
    if credential.owned and not owned:
        raise CredentialConflict(
            f"Credential {credential.pk} is the signing secret of {credential.scope_label}; "
            "rotate it through that subscription (POST /api/v1/subscriptions/{id}/rotate-secret/ "
            "or its admin page)."
        )
    fields = _validated_fields(
        provider=credential.provider, purpose=credential.purpose, fields=fields, owned=owned
    )
    actor = actor_label(created_by)
    with transaction.atomic():
        locked = Credential.objects.select_for_update().get(pk=credential.pk)
        if not locked.enabled:
            raise CredentialConflict(f"Credential {locked.pk} is revoked; create a new one.")
        current = locked.versions.filter(state=State.CURRENT).first()
        if current is None:
            raise CredentialConflict(
                f"Credential {locked.pk} has no current version (all revoked); create a new one."
            )
        number = (locked.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        new = _version_add(
            credential=locked,
            number=number,
            fields=fields,
            state=State.PENDING,
            created_by=created_by,
        )
        now = timezone.now()
        if cap_previous_grace:
            _cap_previous_grace(locked, now, grace_seconds, actor=actor, reason=reason)
        if grace_seconds:
            retired = CredentialVersion.objects.filter(pk=current.pk, state=State.CURRENT).update(
                state=State.PREVIOUS, grace_until=now + timedelta(seconds=grace_seconds)
            )
        else:
            retired = _revoke_versions(
                CredentialVersion.objects.filter(pk=current.pk, state=State.CURRENT), now
            )
        if retired != 1:
            raise CredentialConflict(f"Credential {locked.pk} was rotated concurrently; retry.")
        CredentialVersion.objects.filter(pk=new.pk, state=State.PENDING).update(state=State.CURRENT)
        Credential.objects.filter(pk=locked.pk).update(rotated_at=now, updated_at=now)
        _audit(
            credential=locked,
            action=CredentialAuditEntry.Action.ROTATE,
            actor=actor,
            from_version=current.version,
            to_version=number,
            reason=reason,
        )
    credential.rotated_at = now
    new.refresh_from_db()
    return new


def _cap_previous_grace(credential: Credential, now, grace_seconds: int, *, actor, reason) -> None:
    """Previous versions keep their grace no longer than ``grace_seconds`` from now (none is
    extended); with 0 they are revoked, each audited."""
    previous = credential.versions.filter(state=State.PREVIOUS)
    if grace_seconds:
        until = now + timedelta(seconds=grace_seconds)
        previous.filter(grace_until__gt=until).update(grace_until=until)
        return
    numbers = sorted(previous.values_list("version", flat=True))
    _revoke_versions(previous, now)
    for number in numbers:
        _audit(
            credential=credential,
            action=CredentialAuditEntry.Action.REVOKE,
            actor=actor,
            from_version=number,
            reason=reason or "rotated with no grace period",
        )


def _revoke_versions(versions, now) -> int:
    # The ciphertext goes with the state: a revoked secret cannot be brought back by anyone.
    return versions.update(
        state=State.REVOKED, revoked_at=now, grace_until=None, ciphertext=b"", key_id=""
    )


def credential_revoke(
    *,
    credential: Credential,
    created_by=None,
    reason: str = "",
    include_current: bool = False,
) -> int:
    """Revoke the previous versions now, ending their grace period. ``include_current`` also
    revokes the current version and disables the credential (it then resolves for nobody and
    cannot be rotated). Returns how many versions were revoked."""
    actor = actor_label(created_by)
    states = [State.PREVIOUS, State.PENDING] + ([State.CURRENT] if include_current else [])
    with transaction.atomic():
        locked = Credential.objects.select_for_update().get(pk=credential.pk)
        now = timezone.now()
        numbers = list(locked.versions.filter(state__in=states).values_list("version", flat=True))
        revoked = _revoke_versions(locked.versions.filter(state__in=states), now)
        if include_current and locked.enabled:
            Credential.objects.filter(pk=locked.pk).update(enabled=False, updated_at=now)
            credential.enabled = False
        for number in sorted(numbers):
            _audit(
                credential=locked,
                action=CredentialAuditEntry.Action.REVOKE,
                actor=actor,
                from_version=number,
                reason=reason,
            )
    return revoked


def credential_versions_expire() -> int:
    """Upkeep (dispatcher): previous versions past ``grace_until`` become revoked."""
    now = timezone.now()
    expired = 0
    due = CredentialVersion.objects.filter(state=State.PREVIOUS, grace_until__lte=now)
    for version in due.select_related("credential")[:500]:
        # Conditional: a concurrent revoke or a second dispatcher may have got there first.
        with transaction.atomic():
            if _revoke_versions(
                CredentialVersion.objects.filter(pk=version.pk, state=State.PREVIOUS), now
            ):
                expired += 1
                _audit(
                    credential=version.credential,
                    action=CredentialAuditEntry.Action.EXPIRE,
                    actor="system",
                    from_version=version.version,
                )
    return expired


_SCOPE_RANK = ("customer", "region+tier", "region", "tier", "global")


def _rank(credential: Credential, customer: Customer) -> tuple[int, int]:
    """Lower is preferred: customer-specific, region+tier, region, tier, global, and only then
    another region's credential that explicitly allows cross-region use."""
    if credential.customer_id:
        level = "customer"
    elif credential.region_id and credential.tier:
        level = "region+tier"
    elif credential.region_id:
        level = "region"
    else:
        level = "tier" if credential.tier else "global"
    foreign = bool(credential.region_id) and credential.region_id != customer.region_id
    return (len(_SCOPE_RANK) if foreign else 0) + _SCOPE_RANK.index(level), credential.pk


@sensitive_variables("fields")
def credential_resolve(
    *, provider: str, customer: Customer, purpose: str = Credential.Purpose.API
) -> ResolvedCredential:
    """The current fields that calls for this customer use now.

    Raises ``CredentialNotConfigured`` (non-retryable) when no credential serves the customer;
    another region's credential is used only where it allows cross-region use. Owned purposes
    (a subscription's signing secret) are never resolved for a call."""
    if purpose in OWNED_PURPOSES:
        raise ValueError(f"{purpose} credentials are never resolved for a call.")
    tier_matches = Q(tier="") | Q(tier=customer.tier)
    candidates = Credential.objects.filter(
        Q(customer=customer)
        | Q(customer__isnull=True, region__isnull=True) & tier_matches
        | Q(customer__isnull=True, region=customer.region_id) & tier_matches
        | Q(customer__isnull=True, region__isnull=False, allow_cross_region=True) & tier_matches,
        provider=provider,
        purpose=purpose,
        enabled=True,
        versions__state=State.CURRENT,
    )
    if not candidates:
        raise CredentialNotConfigured(provider=provider, customer=customer, purpose=purpose)
    chosen = min(candidates, key=lambda c: _rank(c, customer))
    version = chosen.versions.select_related("credential").filter(state=State.CURRENT).first()
    if version is None:  # rotated away between the two reads: resolve again
        return credential_resolve(provider=provider, customer=customer, purpose=purpose)
    return ResolvedCredential(
        credential_id=chosen.pk,
        version_id=version.pk,
        version=version.version,
        fields=version_decrypt(version),
        shared=chosen.customer_id is None,
    )


@sensitive_variables()
def credential_verification_secrets(*, credential: Credential) -> list[tuple[int, dict[str, str]]]:
    """(version number, fields) of the current and every previous version still in grace, newest
    first: inbound signature checks try each, and record which version matched."""
    now = timezone.now()
    versions = credential.versions.select_related("credential").filter(
        Q(state=State.CURRENT) | Q(state=State.PREVIOUS, grace_until__gt=now)
    )
    return [(v.version, version_decrypt(v)) for v in versions.order_by("-version")]


# Until when (monotonic seconds) this process needs no ``last_used_at`` write per version, so the
# hot path of a webhook or an outbound call skips the shared cache (a Redis round trip) and the
# version lookup while the minute lasts. Keyed by id, or by (credential id, version number) when
# called with those; cleared when full, which only costs a few early writes.
LAST_MARKED_SIZE = 4096
_last_marked: dict[object, float] = {}


def credential_version_mark_used(
    *,
    version_id: int | None = None,
    credential: Credential | None = None,
    version: int | None = None,
) -> None:
    """Record that a version was used now, by id or by (credential, version number) as returned
    by ``credential_verification_secrets``. At most one write per minute per version."""
    memo_key = version_id if version_id is not None else (credential.pk, version)
    now_monotonic = time.monotonic()
    if _last_marked.get(memo_key, float("-inf")) > now_monotonic:
        return
    if len(_last_marked) >= LAST_MARKED_SIZE:
        _last_marked.clear()
    _last_marked[memo_key] = now_monotonic + LAST_USED_RESOLUTION.total_seconds()
    if version_id is None:
        version_id = (
            CredentialVersion.objects.filter(credential=credential, version=version)
            .values_list("pk", flat=True)
            .first()
        )
        if version_id is None:
            return
    # The cache spares the database even the conditional UPDATE; the UPDATE's condition keeps
    # the one-write-per-minute promise across processes that do not share the cache.
    if not cache.add(f"credentials:used:{version_id}", 1, LAST_USED_RESOLUTION.total_seconds()):
        return
    now = timezone.now()
    CredentialVersion.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
        pk=version_id,
    ).update(last_used_at=now)


@sensitive_variables()
def credential_versions_reencrypt(*, batch_size: int = 200) -> int:
    """Move one batch of versions not under the primary master key onto it; returns how many
    moved (0 = done). Safe to interrupt and re-run: each row moves with a compare-and-set on its
    old key id, so a re-run simply continues."""
    ring = keyring()
    pending = (
        CredentialVersion.objects.exclude(key_id=ring.primary_id)
        .exclude(key_id="")
        .select_related("credential")
        .order_by("pk")[:batch_size]
    )
    moved = 0
    for version in pending:
        key_id, ciphertext = ring.encrypt(
            _plaintext(version), aad=_aad(version.credential, version.version)
        )
        moved += CredentialVersion.objects.filter(pk=version.pk, key_id=version.key_id).update(
            key_id=key_id, ciphertext=ciphertext
        )
    return moved
