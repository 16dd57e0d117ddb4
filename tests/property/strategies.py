"""Shared Hypothesis strategies: JSON as the API's parser yields it, and HTTP headers as a WSGI
server hands them over."""

from hypothesis import strategies as st

__all__ = ("header_names", "header_values", "headers", "json_values")

# DRF's JSON parser refuses NaN and Infinity, so parsed input never holds them.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5)
    ),
    max_leaves=12,
)

header_names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
    min_size=1,
    max_size=30,
)
# WSGI decodes header values as Latin-1, so every character is below U+0100.
header_values = st.text(st.characters(max_codepoint=0xFF), max_size=80)
headers = st.dictionaries(header_names, header_values, max_size=6)
