"""A credential's life: create, update, rotate with a grace period, revoke, expire. Each change
runs under a row lock on the credential and is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials.exceptions import CredentialConflict
from credentials.models import OWNED_PURPOSES, Credential, CredentialAuditEntry, CredentialVersion
from credentials.services.versions import audit_record, fields_validated, version_add
from customers.services import actor_label

if TYPE_CHECKING:
    from customers.models import Customer, Region

__all__ = (
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "credential_create",
    "credential_create_owned",
    "credential_revoke",
    "credential_rotate",
    "credential_update",
    "credential_versions_expire",
)

State = CredentialVersion.State


DEFAULT_GRACE_SECONDS = 24 * 3600


# An old secret accepted for longer than a month is no longer being rotated out.
MAX_GRACE_SECONDS = 30 * 24 * 3600


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
    fields = fields_validated(provider=provider, purpose=purpose, fields=fields)
    if customer is not None and (region is not None or tier):
        raise ValidationError(
            {"customer": "A customer-specific credential takes no region or tier."}
        )
    if purpose == Credential.Purpose.OAUTH_CLIENT and customer is not None:
        # The app's own client secret, one per provider (DESIGN §11): never a customer's.
        raise ValidationError(
            {"customer": "An oauth_client credential is the app's: global, region or tier."}
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
            version_add(
                credential=credential,
                number=1,
                fields=fields,
                state=State.CURRENT,
                created_by=created_by,
            )
    except IntegrityError:
        raise CredentialConflict(conflict) from None
    audit_record(
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
    fields = fields_validated(provider=provider, purpose=purpose, fields=fields, owned=True)
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
    _rotation_check(credential, grace_seconds=grace_seconds, owned=owned)
    fields = fields_validated(
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
        new = version_add(
            credential=locked,
            number=number,
            fields=fields,
            state=State.PENDING,
            created_by=created_by,
        )
        now = timezone.now()
        if cap_previous_grace:
            _cap_previous_grace(locked, now, grace_seconds, actor=actor, reason=reason)
        if _retire(current, now, grace_seconds) != 1:
            raise CredentialConflict(f"Credential {locked.pk} was rotated concurrently; retry.")
        CredentialVersion.objects.filter(pk=new.pk, state=State.PENDING).update(state=State.CURRENT)
        Credential.objects.filter(pk=locked.pk).update(rotated_at=now, updated_at=now)
        audit_record(
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


def _rotation_check(credential: Credential, *, grace_seconds, owned: bool) -> None:
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


def _retire(current: CredentialVersion, now, grace_seconds: int) -> int:
    """The current version becomes previous until its grace ends (revoked with no grace); 1 if
    it was still current, 0 if a concurrent rotation got there first."""
    still_current = CredentialVersion.objects.filter(pk=current.pk, state=State.CURRENT)
    if grace_seconds:
        return still_current.update(
            state=State.PREVIOUS, grace_until=now + timedelta(seconds=grace_seconds)
        )
    return _revoke_versions(still_current, now)


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
        audit_record(
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
            audit_record(
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
                audit_record(
                    credential=version.credential,
                    action=CredentialAuditEntry.Action.EXPIRE,
                    actor="system",
                    from_version=version.version,
                )
    return expired
