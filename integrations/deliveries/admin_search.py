"""Free-text search of the delivery log that stays on indexes at millions of rows.

Each word of the query (quoted phrases kept whole, as in Django's admin) must match a delivery
in one of these ways: its id, its key, an idempotency key, part of a customer's slug or of an
action name, a substring of at least ``TEXT_MIN`` characters of its last error, or a whole
value inside its input (a card id, an event id, a path).

Django's stock search ORs ``UPPER(col::text)`` comparisons over every field, which no index
answers, so every search read the whole table. Here the small tables (customers, API keys) and
the registry's action names are matched first and become index lookups on deliveries. On
PostgreSQL (migration 0012) a trigram index of the errors answers error substrings and an index
of the input's values answers ids; a substring index of every input would cost each write of a
delivery far more than the index budget. SQLite, the embedded default with small tables,
scans, and finds any part of an input too."""

import contextlib
import uuid

from django.db import connections
from django.db.models import F, Func, JSONField, Q, QuerySet, TextField, Value
from django.db.models.functions import NullIf
from django.utils.text import smart_split, unescape_string_literal

from customers.models import ApiKey, Customer
from integrations.capabilities import CAPABILITIES
from integrations.registry import providers

__all__ = (
    "HELP_TEXT",
    "INPUT_VALUES_PATH",
    "TEXT_MIN",
    "action_names",
    "deliveries_search",
    "search_words",
)

# A trigram index can only narrow a substring of three characters or more; shorter text would
# read every row again.
TEXT_MIN = 3
HELP_TEXT = (
    "Id, key, idempotency key, customer, action, a whole value of the input (such as a card "
    f"id), or text of the last error (at least {TEXT_MIN} characters; quote a phrase)."
)
# Every string and number in an input, at any depth: the expression indexed by migration 0012.
INPUT_VALUES_PATH = 'strict $.** ? (@.type() == "string" || @.type() == "number")'


class InputValues(Func):
    function = "jsonb_path_query_array"
    output_field = JSONField()

    def __init__(self):
        super().__init__(F("input"), Value(INPUT_VALUES_PATH))


def search_words(term: str) -> list[str]:
    """The words of a search box, quoted phrases kept whole (Django's admin rules)."""
    words = []
    for bit in smart_split(term):
        if bit[:1] in ('"', "'") and bit[0] == bit[-1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        if bit.strip():
            words.append(bit.strip())
    return words


def _number(word: str) -> int | None:
    """``word`` as an id or a number in an input (ASCII digits that fit a bigint)."""
    if word.isascii() and word.isdigit() and int(word) < 2**63:
        return int(word)
    return None


def action_names() -> list[str]:
    """Every action a delivery can have: capabilities and ``<provider>.<operation>``."""
    names = set(CAPABILITIES)
    names.update(f"{p.key}.{name}" for p in providers() for name in p.operations)
    return sorted(names)


def _word_matches(word: str, *, api_key_ids: list[int], actions: list[str], values: bool) -> Q:
    match = Q(idempotency_key=word, api_key__in=api_key_ids) if api_key_ids else Q()
    number = _number(word)
    if number is not None:
        match |= Q(pk=number)
    with contextlib.suppress(ValueError):
        match |= Q(key=uuid.UUID(word))
    customers = list(Customer.objects.filter(slug__icontains=word).values_list("pk", flat=True))
    if customers:
        match |= Q(customer__in=customers)
    named = [name for name in actions if word.lower() in name.lower()]
    if named:
        match |= Q(action__in=named)
    if len(word) >= TEXT_MIN:
        match |= Q(error_text__icontains=word)
    if not values:
        return match | Q(input__icontains=word) if len(word) >= TEXT_MIN else match
    match |= Q(input_values__contains=[word])
    if number is not None:
        match |= Q(input_values__contains=[number])
    return match


def deliveries_search(queryset: QuerySet, term: str) -> QuerySet:
    """``queryset`` narrowed to the deliveries matching every word of ``term``."""
    words = search_words(term)
    if not words:
        return queryset
    # Idempotency keys are unique per API key: one probe per key on that unique index.
    api_key_ids = list(ApiKey.objects.values_list("pk", flat=True))
    actions = action_names()
    # A success clears the error: empty errors are NULL in the index, so it mostly holds
    # failing rows, and its statistics tell how many rows an error matches.
    queryset = queryset.alias(error_text=NullIf("last_error", Value("", output_field=TextField())))
    values = connections[queryset.db].vendor == "postgresql"
    if values:
        queryset = queryset.alias(input_values=InputValues())
    for word in words:
        match = _word_matches(word, api_key_ids=api_key_ids, actions=actions, values=values)
        queryset = queryset.filter(match) if match else queryset.none()
    return queryset
