"""Storing and reading one credential version: field validation, encryption bound to its row,
audit entries. Plaintext exists only inside these functions and in what they return; it is never
logged, never put in an exception message and never stored unencrypted (``sensitive_variables``
keeps it out of Django's error reports, which show frame locals)."""

from __future__ import annotations

import json
import logging

from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from credentials.crypto import keyring
from credentials.models import (
    OWNED_PURPOSES,
    Credential,
    CredentialAuditEntry,
    CredentialVersion,
)
from customers.services import actor_label
from integrations.providers.types import CredentialField
from integrations.registry import ProviderNotRegistered, get_provider

__all__ = (
    "MAX_FIELD_CHARS",
    "OWNED_FIELDS",
    "audit_record",
    "fields_validated",
    "version_aad",
    "version_add",
    "version_decrypt",
    "version_plaintext",
)

logger = logging.getLogger(__name__)


MAX_FIELD_CHARS = 8192


# The fields of owned credentials, which no provider declares (nobody may create them directly).
OWNED_FIELDS = {
    Credential.Purpose.SUBSCRIPTION_SIGNING: [
        CredentialField("secret", help_text="Standard Webhooks signing secret (whsec_…).")
    ],
}


def version_aad(credential: Credential, version: int) -> bytes:
    """Associated data: decrypting succeeds only in the row (and scope) it was written for."""
    return (
        f"switchyard.credential.v1|{credential.pk}|{version}|{credential.provider}|"
        f"{credential.purpose}|{credential.scope_key}"
    ).encode()


@sensitive_variables("fields", "value")
def fields_validated(
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
def version_add(
    *, credential: Credential, number: int, fields: dict[str, str], state: str, created_by
) -> CredentialVersion:
    plaintext = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    ring = keyring()
    key_id, ciphertext = ring.encrypt(plaintext, aad=version_aad(credential, number))
    return CredentialVersion.objects.create(
        credential=credential,
        version=number,
        state=state,
        ciphertext=ciphertext,
        key_id=key_id,
        fingerprint=ring.fingerprint(plaintext),
        created_by=actor_label(created_by),
    )


def audit_record(*, credential, action, actor, from_version=None, to_version=None, reason=""):
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
def version_plaintext(version: CredentialVersion) -> bytes:
    return keyring().decrypt(
        version.key_id,
        version.ciphertext,
        aad=version_aad(version.credential, version.version),
        what=f"credential {version.credential_id} version {version.version}",
    )


@sensitive_variables()
def version_decrypt(version: CredentialVersion) -> dict[str, str]:
    """Decrypt one version's fields; ``DecryptionFailed`` names the row, never the secret."""
    return json.loads(version_plaintext(version))
