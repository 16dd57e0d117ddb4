"""Importing this package imports every provider module, so each ``@register`` runs."""

from integrations.providers import (  # noqa: F401
    ga4,
    http,
    miro,
    selenium,
    shopify,
    standard_webhooks,
    stripe,
    trello,
)
