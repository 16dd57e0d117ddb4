"""Importing this package imports every provider module, so each ``@register`` runs."""
