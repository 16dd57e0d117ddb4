"""The master-key ring behind the credentials vault.

``SWITCHYARD_ENCRYPTION_KEYS`` lists url-safe base64 keys of 32 bytes, separate from
``SECRET_KEY``: the first encrypts, every key decrypts (the ``MultiFernet`` and
``SECRET_KEY_FALLBACKS`` model). Unlike Fernet, each ciphertext is stored next to the id of
the key that made it, so decryption needs no trial and ``credentials_reencrypt`` can count
what each key still protects. Ciphertexts are AES-256-GCM with associated data naming their
row, so a ciphertext copied into another row (another customer, another version) fails
authentication instead of decrypting.

Key ids are derived from the key (an HMAC, not the key itself): stable across restarts and
machines, with nothing to configure beyond the key list.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

__all__ = (
    "DEVELOPMENT_KEY_FILENAME",
    "DecryptionFailed",
    "Keyring",
    "development_key",
    "generate_key",
    "keyring",
    "parse_key",
)

KEY_BYTES = 32
NONCE_BYTES = 12
DEVELOPMENT_KEY_FILENAME = "encryption-key"


class DecryptionFailed(Exception):
    """A ciphertext could not be decrypted. The message names the row and the key id, never
    key material or plaintext."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


@sensitive_variables()
def parse_key(encoded: str) -> bytes:
    """Decode one configured key; ``ValueError`` says what is wrong without echoing the key."""
    try:
        raw = base64.urlsafe_b64decode(encoded.encode())
    except (binascii.Error, ValueError):
        raise ValueError("is not url-safe base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"decodes to {len(raw)} bytes, expected {KEY_BYTES}")
    return raw


@sensitive_variables()
def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


@dataclass(frozen=True)
class _MasterKey:
    key_id: str
    aead: AESGCM


class Keyring:
    """Encrypts under the primary (first) key and decrypts under whichever key a row names."""

    @sensitive_variables("encoded_keys", "encoded", "raw")
    def __init__(self, encoded_keys: list[str] | tuple[str, ...]):
        if not encoded_keys:
            raise ImproperlyConfigured("SWITCHYARD_ENCRYPTION_KEYS is empty.")
        self._keys: dict[str, _MasterKey] = {}
        for position, encoded in enumerate(encoded_keys, start=1):
            try:
                raw = parse_key(encoded)
            except ValueError as exc:
                raise ImproperlyConfigured(
                    f"SWITCHYARD_ENCRYPTION_KEYS entry {position} {exc}."
                ) from None
            key_id = _derive(raw, b"switchyard key id").hex()[:12]
            self._keys.setdefault(key_id, _MasterKey(key_id, AESGCM(raw)))
            if position == 1:
                self.primary_id = key_id
                # Fingerprints use their own derived key: a fingerprint never helps decryption.
                self._fingerprint_key = _derive(raw, b"switchyard credential fingerprint")

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    @sensitive_variables("plaintext")
    def encrypt(self, plaintext: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """Returns (key id, nonce + ciphertext)."""
        nonce = os.urandom(NONCE_BYTES)
        return self.primary_id, nonce + self._keys[self.primary_id].aead.encrypt(
            nonce, plaintext, aad
        )

    @sensitive_variables()
    def decrypt(self, key_id: str, blob: bytes, *, aad: bytes, what: str) -> bytes:
        """``what`` names the row in the error ("credential 7 version 2")."""
        master = self._keys.get(key_id)
        if master is None:
            raise DecryptionFailed(
                f"Cannot decrypt {what}: it was encrypted under master key {key_id or '(none)'}, "
                "which is not in SWITCHYARD_ENCRYPTION_KEYS. Add that key back, run "
                "`manage.py credentials_reencrypt`, then drop it."
            )
        try:
            return master.aead.decrypt(bytes(blob[:NONCE_BYTES]), bytes(blob[NONCE_BYTES:]), aad)
        except InvalidTag:
            raise DecryptionFailed(
                f"Cannot decrypt {what} under master key {key_id}: the ciphertext does not "
                "belong to this row (copied from another credential, version or customer) "
                "or has been tampered with."
            ) from None

    @sensitive_variables("plaintext")
    def fingerprint(self, plaintext: bytes) -> str:
        return hmac.new(self._fingerprint_key, plaintext, hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=4)
@sensitive_variables()
def _keyring_for(encoded_keys: tuple[str, ...]) -> Keyring:
    return Keyring(encoded_keys)


def keyring() -> Keyring:
    """The keyring for the current settings (cached per key list, so override_settings works)."""
    return _keyring_for(tuple(settings.SWITCHYARD_ENCRYPTION_KEYS))


def development_key(var_dir: Path) -> str:
    """The key development runs use when no keys are configured: generated once into ``var/``
    so that web, worker and dispatcher (and restarts) share it. Never used with DEBUG off."""
    path = Path(var_dir) / DEVELOPMENT_KEY_FILENAME
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    candidate.write_text(generate_key() + "\n")
    candidate.chmod(0o600)
    try:
        # link() is atomic and refuses to overwrite: when several processes start at once,
        # exactly one key wins and nobody reads a half-written file.
        os.link(candidate, path)
    except FileExistsError:
        pass
    else:
        sys.stderr.write(
            f"WARNING: SWITCHYARD_ENCRYPTION_KEYS is not set; generated a development key into "
            f"{path}. Set SWITCHYARD_ENCRYPTION_KEYS in production.\n"
        )
    finally:
        candidate.unlink()
    return path.read_text().strip()
