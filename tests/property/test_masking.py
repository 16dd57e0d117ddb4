"""Properties of ``integrations.deliveries.masking``: a credential put anywhere in a stored text,
JSON value or header set never comes out of the masker, in any form the masker names
(``secret_forms``)."""

import json

from hypothesis import given
from hypothesis import strategies as st

from integrations.deliveries.masking import (
    MASK,
    MIN_PARTIAL_CHARS,
    MIN_SECRET_CHARS,
    Masker,
    secret_forms,
)
from tests.property.strategies import header_names, header_values, json_values

# The mask is asterisks, so a secret containing some could be spelled again by the mask itself
# and the text around it; that reveals nothing, so such secrets are left out.
secrets = st.text(min_size=MIN_SECRET_CHARS, max_size=24).filter(lambda s: "*" not in s)
texts = st.text(max_size=60)


def _spellings(secret: str) -> st.SearchStrategy[str]:
    """The secret itself or any form of it the masker claims to mask."""
    return st.sampled_from(sorted({secret, *secret_forms(secret)}))


def _strings(value) -> list[str]:
    """Every string in a JSON-like value, keys included, and every number as text (a number
    can spell a digit-only secret); null, true and false spell nothing."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (*_strings(key), *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def _insert(value, spelled: str, path: list[int]):
    """``value`` with ``spelled`` put into one of its strings (or replacing a leaf), following
    ``path`` to choose where."""
    choice, rest = (path[0], path[1:]) if path else (0, [])
    if isinstance(value, dict) and value:
        keys = list(value)
        key = keys[choice % len(keys)]
        copy = dict(value)
        if rest and rest[0] % 2:
            copy[_insert(key, spelled, rest[1:])] = copy.pop(key)
        else:
            copy[key] = _insert(value[key], spelled, rest)
        return copy
    if isinstance(value, list) and value:
        copy = list(value)
        copy[choice % len(copy)] = _insert(copy[choice % len(copy)], spelled, rest)
        return copy
    if isinstance(value, str):
        at = choice % (len(value) + 1)
        return value[:at] + spelled + value[at:]
    return spelled


@given(data=st.data(), secret=secrets, other=secrets, before=texts, after=texts)
def test_a_secret_anywhere_in_a_text_is_masked(data, secret, other, before, after):
    spelled = data.draw(_spellings(secret), label="spelled")
    masker = Masker(credentials={"token": secret, "other": other})

    masked = masker.text(before + spelled + after)

    assert secret not in masked
    assert spelled not in masked


@given(
    data=st.data(),
    secret=secrets,
    value=json_values,
    path=st.lists(st.integers(0, 10), max_size=8),
)
def test_a_secret_anywhere_in_a_json_value_is_masked(data, secret, value, path):
    spelled = data.draw(_spellings(secret), label="spelled")
    masker = Masker(credentials={"token": secret})

    masked = masker.value(_insert(value, spelled, path))

    assert not [s for s in _strings(masked) if secret in s or spelled in s]
    json.dumps(masked)


@given(
    data=st.data(),
    secret=secrets,
    headers=st.dictionaries(header_names, header_values, max_size=5),
    in_name=st.booleans(),
    at=st.integers(0, 100),
)
def test_a_secret_anywhere_in_headers_is_masked(data, secret, headers, in_name, at):
    spelled = data.draw(_spellings(secret), label="spelled")
    name, value = data.draw(st.tuples(header_names, header_values), label="carrier")
    if in_name:
        name = name[: at % (len(name) + 1)] + spelled + name[at % (len(name) + 1) :]
    else:
        value = value[: at % (len(value) + 1)] + spelled + value[at % (len(value) + 1) :]
    masker = Masker(credentials={"token": secret})

    masked = masker.headers({**headers, name: value})

    for masked_name, masked_value in masked.items():
        assert secret not in masked_name and spelled not in masked_name
        assert secret not in masked_value and spelled not in masked_value


@given(secret=secrets, text=texts)
def test_text_without_a_secret_is_left_alone_but_for_cut_tails(secret, text):
    """The masker may only replace what spells (part of) a secret, so unrelated text survives."""
    masked = Masker(credentials={"token": secret}).text(text)
    if MASK not in masked:
        assert masked == text


def _longest_cut_tail(forms: set[str], body: str) -> int:
    """The oracle: the length of the longest end of ``body`` that begins a form (at least
    MIN_PARTIAL_CHARS of it, never all of it), else 0."""
    for length in range(len(body), MIN_PARTIAL_CHARS - 1, -1):
        if any(len(form) > length and form.startswith(body[-length:]) for form in forms):
            return length
    return 0


@given(data=st.data(), secret=secrets, before=texts)
def test_a_text_cut_through_a_secret_loses_exactly_the_cut_tail(data, secret, before):
    """An excerpt cut anywhere through any form of a secret: once whole forms are masked, the
    longest end that begins a form (U+FFFD of a cut character aside) becomes the mask, nothing
    before it and nothing else."""
    spelled = data.draw(_spellings(secret))
    text = before + spelled[: data.draw(st.integers(0, len(spelled)))]
    masker = Masker(credentials={"token": secret})
    whole = masker._pattern.sub(MASK, text)
    body = whole.rstrip("\ufffd")
    tail = _longest_cut_tail(secret_forms(secret), body)
    expected = body[: len(body) - tail] + MASK + whole[len(body) :] if tail else whole
    assert masker.text(text) == expected
