"""Writes of the credentials vault, plus resolution (the one read that decrypts): versions
(encryption and audit), lifecycle (create, rotate, revoke, expire), resolution and last use,
re-encryption under a new master key."""

from credentials.exceptions import CredentialConflict, CredentialNotConfigured
from credentials.services.data_lifecycle import (
    CREDENTIAL_AUDIT,
    credential_destroy,
    customer_credentials_erase,
)
from credentials.services.lifecycle import (
    DEFAULT_GRACE_SECONDS,
    MAX_GRACE_SECONDS,
    credential_create,
    credential_create_owned,
    credential_revoke,
    credential_rotate,
    credential_update,
    credential_versions_expire,
)
from credentials.services.reencrypt import credential_versions_reencrypt
from credentials.services.resolution import (
    LAST_USED_RESOLUTION,
    ResolvedCredential,
    credential_resolve,
    credential_verification_secrets,
    credential_version_mark_used,
)
from credentials.services.versions import version_decrypt

__all__ = (
    "CREDENTIAL_AUDIT",
    "DEFAULT_GRACE_SECONDS",
    "LAST_USED_RESOLUTION",
    "MAX_GRACE_SECONDS",
    "CredentialConflict",
    "CredentialNotConfigured",
    "ResolvedCredential",
    "credential_create",
    "credential_create_owned",
    "credential_destroy",
    "credential_resolve",
    "credential_revoke",
    "credential_rotate",
    "credential_update",
    "credential_verification_secrets",
    "credential_version_mark_used",
    "credential_versions_expire",
    "credential_versions_reencrypt",
    "customer_credentials_erase",
    "version_decrypt",
)
