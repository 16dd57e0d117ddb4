"""What every provider declares. Adapters subclass ``BaseProvider`` and ``@register`` it."""

from dataclasses import dataclass
from typing import ClassVar

__all__ = ("BaseProvider", "CredentialField", "CredentialPurpose")


class CredentialPurpose:
    API = "api"
    WEBHOOK_SIGNING = "webhook_signing"
    CHOICES = ((API, "API access"), (WEBHOOK_SIGNING, "Webhook signing"))


@dataclass(frozen=True)
class CredentialField:
    name: str
    required: bool = True
    secret: bool = True
    help_text: str = ""


class BaseProvider:
    key: ClassVar[str]
    name: ClassVar[str]
    # Keyed by purpose ("api", "webhook_signing"); a purpose a provider lacks is absent.
    credential_fields: ClassVar[dict[str, list[CredentialField]]] = {}
