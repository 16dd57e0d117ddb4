"""What a JSON document may hold to be accepted anywhere (API bodies, webhook bodies): at most
``MAX_JSON_DEPTH`` levels (each level costs a recursion in the parser and in every serializer
that walks it), and no NUL character in a string or key (PostgreSQL text and jsonb hold none)."""

__all__ = ("MAX_JSON_DEPTH", "NUL", "Violation", "json_violation", "nul_escaped")

MAX_JSON_DEPTH = 64
NUL = "\x00"


def nul_escaped(text: str) -> str:
    """``text`` with each NUL written as ``\\u0000``, so that it can be stored and shown."""
    return text.replace(NUL, "\\u0000")


class Violation:
    """Why a document is refused, and where: ``path`` is the chain of keys down to the value,
    as nested (parent, key) pairs (None at the top), spelt out only when reported."""

    TOO_DEEP = "too_deep"
    NUL_IN_VALUE = "nul_in_value"
    NUL_IN_KEY = "nul_in_key"

    def __init__(self, kind: str, path):
        self.kind, self.path = kind, path

    def keys(self) -> list:
        keys, where = [], self.path
        while where is not None:
            where, key = where
            keys.append(key)
        return keys[::-1]

    def __str__(self) -> str:
        if self.kind == self.TOO_DEEP:
            return f"it is nested deeper than {MAX_JSON_DEPTH} levels"
        where = "/".join(nul_escaped(str(key)) for key in self.keys()) or "the top"
        return f"it holds a NUL character (\\u0000) at {where}"


def json_violation(data) -> Violation | None:
    """The first reason ``data`` (parsed JSON) may not be accepted, or None. Iterative, so the
    check itself has no recursion limit."""
    stack = [(data, 0, None)]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, dict):
            children = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            if isinstance(value, str) and NUL in value:
                return Violation(Violation.NUL_IN_VALUE, where)
            continue
        if depth == MAX_JSON_DEPTH:
            return Violation(Violation.TOO_DEEP, where)
        for key, child in children:
            if isinstance(key, str) and NUL in key:
                return Violation(Violation.NUL_IN_KEY, (where, key))
            stack.append((child, depth + 1, (where, key)))
    return None
