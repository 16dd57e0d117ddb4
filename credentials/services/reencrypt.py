"""Moving every version onto the primary master key (``manage.py credentials_reencrypt``)."""

from django.views.decorators.debug import sensitive_variables

from credentials.crypto import keyring
from credentials.models import CredentialVersion
from credentials.services.versions import version_aad, version_plaintext

__all__ = ("credential_versions_reencrypt",)


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
            version_plaintext(version), aad=version_aad(version.credential, version.version)
        )
        moved += CredentialVersion.objects.filter(pk=version.pk, key_id=version.key_id).update(
            key_id=key_id, ciphertext=ciphertext
        )
    return moved
