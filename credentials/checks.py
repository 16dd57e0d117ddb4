"""System checks for the master keys (``manage.py check``, run before runserver and migrate)."""

from django.conf import settings
from django.core import checks

from credentials.crypto import DEVELOPMENT_KEY_FILENAME, parse_key

__all__ = ("check_encryption_keys",)


@checks.register("credentials")
def check_encryption_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    keys = getattr(settings, "SWITCHYARD_ENCRYPTION_KEYS", None)
    if not keys:
        return [
            checks.Error(
                "SWITCHYARD_ENCRYPTION_KEYS is empty: credentials can be neither stored nor read.",
                hint="Set it to one or more comma-separated url-safe base64 keys of 32 bytes.",
                id="credentials.E001",
            )
        ]
    messages = []
    for position, encoded in enumerate(keys, start=1):
        try:
            parse_key(encoded)
        except ValueError as exc:
            # Name the position, never the value: a malformed key may still be most of a key.
            messages.append(
                checks.Error(
                    f"SWITCHYARD_ENCRYPTION_KEYS entry {position} {exc}.",
                    hint="Each key is 32 random bytes, url-safe base64 encoded.",
                    id="credentials.E002",
                )
            )
    if len(set(keys)) != len(keys):
        messages.append(
            checks.Error(
                "SWITCHYARD_ENCRYPTION_KEYS lists the same key twice.",
                id="credentials.E003",
            )
        )
    if getattr(settings, "SWITCHYARD_USES_DEVELOPMENT_KEY", False):
        messages.append(
            checks.Warning(
                f"Credentials are encrypted with the development key in "
                f"var/{DEVELOPMENT_KEY_FILENAME}.",
                hint="Set SWITCHYARD_ENCRYPTION_KEYS for any deployment that holds real secrets.",
                id="credentials.W001",
            )
        )
    return messages
