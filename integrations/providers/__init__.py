"""Provider adapters, one module each. ``IntegrationsConfig.ready()`` imports them, so each
``@register`` runs; importing this package imports none of them."""
