"""Free-text search of the inbound event log that stays on indexes at millions of rows (the
delivery log's rules, ``integrations/deliveries/admin_search.py``).

Each word must be an event's external id (the provider's event id, exactly), a substring of at
least ``TEXT_MIN`` characters of its error (a trigram index on PostgreSQL, webhooks migration
0010), or, for a dotted word such as ``charge.failed``, part of its type.
A type search walks the newest events first: quick for the types operators look for, a scan
when no event has it (the type has no index, so that processing's update stays HOT)."""

from django.db.models import Q, QuerySet, TextField, Value
from django.db.models.functions import NullIf

from integrations.deliveries.admin_search import TEXT_MIN, search_words
from webhooks.models import WebhookEndpoint

__all__ = ("HELP_TEXT", "inbound_events_search")

HELP_TEXT = (
    f"External event id, error text (at least {TEXT_MIN} characters), or a dotted event type "
    "such as charge.failed."
)


def _word_matches(word: str, *, endpoint_ids: list[int]) -> Q:
    # External ids are unique per endpoint: one probe per endpoint on that unique index.
    match = Q(endpoint__in=endpoint_ids, external_id=word) if endpoint_ids else Q()
    if len(word) >= TEXT_MIN:
        # ``error > ''`` is the error index's condition: only events with an error are in it.
        match |= Q(error__gt="", error_text__icontains=word)
    if "." in word:
        match |= Q(type__icontains=word)
    return match


def inbound_events_search(queryset: QuerySet, term: str) -> QuerySet:
    """``queryset`` narrowed to the inbound events matching every word of ``term``."""
    words = search_words(term)
    if not words:
        return queryset
    endpoint_ids = list(WebhookEndpoint.objects.values_list("pk", flat=True))
    # Empty errors are NULL in the index: the expression of webhooks migration 0010.
    queryset = queryset.alias(error_text=NullIf("error", Value("", output_field=TextField())))
    for word in words:
        match = _word_matches(word, endpoint_ids=endpoint_ids)
        queryset = queryset.filter(match) if match else queryset.none()
    return queryset
