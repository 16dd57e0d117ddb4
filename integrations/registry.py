"""The provider registry: provider classes register under their key at import time; the registry
is filled in ``IntegrationsConfig.ready()`` and frozen afterwards."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integrations.providers.base import BaseProvider

__all__ = (
    "ProviderNotRegistered",
    "freeze",
    "get_provider",
    "provider_keys",
    "providers",
    "register",
)


class ProviderNotRegistered(LookupError):
    def __init__(self, key: str):
        super().__init__(
            f"Unknown provider '{key}'. Known providers: {', '.join(provider_keys())}."
        )
        self.key = key


_providers: dict[str, BaseProvider] = {}
_frozen = False


def register(provider_class: type[BaseProvider]) -> type[BaseProvider]:
    """Class decorator: instantiate the provider once and register it under its key."""
    if _frozen:
        raise RuntimeError("Cannot register providers after start-up")
    if provider_class.key in _providers:
        raise RuntimeError(f"Provider '{provider_class.key}' is registered twice")
    _providers[provider_class.key] = provider_class()
    return provider_class


def freeze() -> None:
    global _frozen
    _frozen = True


def get_provider(key: str) -> BaseProvider:
    try:
        return _providers[key]
    except KeyError:
        raise ProviderNotRegistered(key) from None


def provider_keys() -> list[str]:
    return sorted(_providers)


def providers() -> list[BaseProvider]:
    return [_providers[key] for key in provider_keys()]
