"""The API's JSON parser: DRF's, refusing what no endpoint can store (``config.json_limits``).
A document nested too deep is a 400 parse error; a NUL character in any string or key is a 400
naming the field, on every backend."""

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from config.json_limits import MAX_JSON_DEPTH, Violation, json_violation, nul_escaped

__all__ = ("MAX_JSON_DEPTH", "StrictJSONParser")


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_too_deep()) from None
        _check(data)
        return data


def _too_deep() -> str:
    return f"JSON parse error - the document is nested deeper than {MAX_JSON_DEPTH} levels."


def _nul_error(where, message: str) -> ValidationError:
    """The error nested as a serializer nests it: {"input": {"items": {"0": {"note": [...]}}}}
    from the (parent, key) chain of the value."""
    errors = [message]
    while where is not None:
        where, key = where
        errors = {nul_escaped(str(key)): errors}
    return ValidationError(errors if isinstance(errors, dict) else {"non_field_errors": errors})


def _check(data) -> None:
    violation = json_violation(data)
    if violation is None:
        return
    if violation.kind == Violation.TOO_DEEP:
        raise ParseError(_too_deep())
    if violation.kind == Violation.NUL_IN_KEY:
        raise _nul_error(violation.path, "NUL (\\u0000) characters are not allowed in keys.")
    raise _nul_error(violation.path, "NUL (\\u0000) characters are not allowed.")
