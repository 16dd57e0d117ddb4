"""The provider registry: provider classes register under their key when their module is imported
(``IntegrationsConfig.ready()`` imports the adapters), and other apps add the operations they
own (``operation_add``) from their own ``ready()``. Once every app is ready the registry is
closed, so all processes agree on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import apps

if TYPE_CHECKING:
    from integrations.providers.base import BaseProvider
    from integrations.providers.types import Operation

__all__ = (
    "ProviderNotRegistered",
    "get_provider",
    "operation_add",
    "provider_keys",
    "provider_registered",
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


def _open_check(what: str) -> None:
    if apps.ready:
        raise RuntimeError(f"Cannot register {what} after start-up")


def register(provider_class: type[BaseProvider]) -> type[BaseProvider]:
    """Class decorator: instantiate the provider once and register it under its key."""
    _open_check(f"provider '{provider_class.key}'")
    if provider_class.key in _providers:
        raise RuntimeError(f"Provider '{provider_class.key}' is registered twice")
    _providers[provider_class.key] = provider_class()
    return provider_class


def operation_add(provider_key: str, operation: Operation) -> None:
    """Give a registered provider an operation another app owns (the webhooks app's
    ``standard_webhooks.send``), so the provider module needs no import of that app."""
    _open_check(f"operation '{provider_key}.{operation.name}'")
    provider = get_provider(provider_key)
    if operation.name in provider.operations:
        raise RuntimeError(f"Operation '{provider_key}.{operation.name}' is registered twice")
    provider.operations = {**provider.operations, operation.name: operation}


def get_provider(key: str) -> BaseProvider:
    try:
        return _providers[key]
    except KeyError:
        raise ProviderNotRegistered(key) from None


def provider_keys() -> list[str]:
    return sorted(_providers)


def provider_registered(key: str) -> bool:
    """A dictionary lookup, for hot paths (``provider_keys`` sorts on every call)."""
    return key in _providers


def providers() -> list[BaseProvider]:
    return [_providers[key] for key in provider_keys()]
