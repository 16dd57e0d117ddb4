"""Keep secrets out of stored request/response records, results and error messages.

Two layers: headers that carry secrets are replaced wholesale, and every credential value is
replaced wherever it appears (Trello and GA4 put credentials in the query string, connection
errors quote the URL, and servers echo what they were sent), in every form a stored text may
hold it: plain, JSON-escaped (a secret with ``"``, ``\\`` or non-ASCII echoed inside a JSON
body), Python-repr-escaped (an error message quoting a parsed JSON value), URL-encoded, base64
(also inside a larger encoded string such as ``user:secret`` in Basic auth) and hex."""

import base64
import binascii
import contextlib
import functools
import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from integrations.constants import SECRET_HEADERS

__all__ = ("MASK", "MIN_SECRET_CHARS", "Masker", "excerpt", "masker_for", "secret_forms")

MASK = "****"
# A secret shorter than this is masked in plain form only, and only as a whole token (not inside
# a longer run of letters and digits): its encoded forms are as short and as common as it is.
MIN_SECRET_CHARS = 4
# A base64 run that only partly covers a secret is masked when at least this long: shorter runs
# are as likely to occur by chance in unrelated base64 as to betray the secret.
MIN_BASE64_CORE_CHARS = 8
# A text ending in at least this many leading characters of a form (an excerpt cut through a
# secret) has that tail masked too.
MIN_PARTIAL_CHARS = 6

_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def excerpt(body: bytes | str | None, limit: int) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        body = body[:limit].decode("utf-8", errors="replace")
    return body[:limit]


# Go's encoding/json escapes these even in UTF-8 output, so its JSON is safe inside HTML.
_GO_HTML_SAFE = str.maketrans({"&": "\\u0026", "<": "\\u003c", ">": "\\u003e"})
_UNICODE_ESCAPE = re.compile(r"\\u[0-9a-f]{4}")


def _json_escaped(text: str) -> set[str]:
    """``text`` as it appears inside a JSON string: ASCII-only or not, with ``/`` escaped as
    ``\\/`` (PHP and some others do), with Go's HTML-safe escapes of ``&<>``, and with the hex
    of ``\\u`` escapes in upper case (Jackson)."""
    forms = {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    forms |= {form.replace("/", "\\/") for form in forms}
    forms |= {form.translate(_GO_HTML_SAFE) for form in forms}
    return forms | {_UNICODE_ESCAPE.sub(lambda m: "\\u" + m.group()[2:].upper(), f) for f in forms}


def _url_encoded(text: str) -> set[str]:
    forms = {quote(text, safe=""), quote_plus(text), quote(text)}
    # Percent escapes are case-insensitive; some encoders write them in lower case.
    return forms | {_PERCENT_ESCAPE.sub(lambda m: m.group().lower(), form) for form in forms}


def _base64_cores(raw: bytes) -> set[str]:
    """For each of the 3 offsets ``raw`` may start at within a base64 group: the characters of
    the encoding that depend on ``raw``'s bits only, whatever precedes or follows it. They find
    ``raw`` inside a larger encoded string (``base64("user:" + secret)``)."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode().rstrip("=")
        first = -(-8 * offset // 6)  # first character whose 6 bits all come from raw
        last = 8 * (offset + len(raw)) // 6  # one past the last such character
        core = encoded[first:last]
        if len(core) >= MIN_BASE64_CORE_CHARS:
            cores.add(core)
    return cores


def secret_forms(value: str) -> set[str]:
    """Every form of ``value`` that Masker replaces (empty for a secret too short to have any
    but its plain form, which is masked as a whole token)."""
    if len(value) < MIN_SECRET_CHARS:
        return set()
    raw = value.encode()
    encoded = {base64.b64encode(raw).decode(), *_base64_cores(raw)}
    encoded |= {form.rstrip("=") for form in encoded}
    encoded |= {form.translate(str.maketrans("+/", "-_")) for form in encoded}
    hexed = binascii.hexlify(raw).decode()
    forms = {value, hexed, hexed.upper()}
    forms |= _json_escaped(value)
    # An answer rendered as HTML or XML escapes & < > " '.
    forms |= {html.escape(value), html.escape(value, quote=False)}
    forms |= {repr(value)[1:-1], ascii(value)[1:-1]}
    # Error excerpts collapse whitespace; bodies are decoded as UTF-8, so a secret a server wrote
    # in Latin-1 or Windows-1252 reads with U+FFFD in place of its non-ASCII characters.
    forms.add(" ".join(value.split()))
    for charset in ("latin-1", "cp1252"):
        with contextlib.suppress(UnicodeEncodeError):
            misread = value.encode(charset).decode("utf-8", errors="replace")
            if len(misread.replace("\ufffd", "")) >= MIN_SECRET_CHARS:
                forms.add(misread)
    # A JSON body echoed inside a JSON string escapes the escapes once more.
    forms |= {twice for once in _json_escaped(value) for twice in _json_escaped(once)}
    forms |= _url_encoded(value)
    for form in encoded:
        forms |= {form, *_json_escaped(form), *_url_encoded(form)}
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


class Masker:
    """Masks the given credentials' values in text (``text``), in JSON-like structures
    (``value``) and in headers (``headers``, which also masks secret headers wholesale)."""

    def __init__(self, *, credentials: Mapping[str, str], secret_headers: Iterable[str] = ()):
        values = {value for value in credentials.values() if isinstance(value, str) and value}
        forms = set().union(*(secret_forms(value) for value in values))
        short = {value for value in values if len(value) < MIN_SECRET_CHARS} - forms
        # Longest first, so a value containing another is masked whole (the regex takes the
        # first alternative that matches at a position).
        alternatives = [re.escape(form) for form in sorted(forms, key=len, reverse=True)]
        alternatives += [
            rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"
            for value in sorted(short, key=len, reverse=True)
        ]
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None
        self._prefixes = {
            form[:length] for form in forms for length in range(MIN_PARTIAL_CHARS, len(form))
        }
        self._longest_prefix = max(map(len, self._prefixes), default=0)
        # Where a cut tail may begin: at the first characters of a form. A scan in C finds those
        # few places, rather than a slice and a lookup for every length a tail may have.
        heads = sorted({prefix[:MIN_PARTIAL_CHARS] for prefix in self._prefixes})
        self._tail_starts = (
            re.compile(f"(?=(?:{'|'.join(map(re.escape, heads))}))") if heads else None
        )
        self._headers = SECRET_HEADERS | {name.lower() for name in secret_headers}

    def text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        text = self._pattern.sub(MASK, text)
        return self._mask_cut_tail(text)

    def _mask_cut_tail(self, text: str) -> str:
        """An excerpt cut through a secret ends in its first characters: mask those too (a
        character cut in half by a byte limit decodes as U+FFFD, ignored here)."""
        body = text.rstrip("\ufffd")
        if self._tail_starts is None or len(body) < MIN_PARTIAL_CHARS:
            return text
        # The longest tail first: the earliest place it may begin.
        for start in self._tail_starts.finditer(body, max(0, len(body) - self._longest_prefix)):
            if body[start.start() :] in self._prefixes:
                return body[: start.start()] + MASK + text[len(body) :]
        return text

    def value(self, obj: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, strings, numbers) with every string, key
        or value, masked; a number that spells a secret becomes the mask."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {self.value(key): self.value(item) for key, item in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(item) for item in obj]
        if isinstance(obj, int | float) and not isinstance(obj, bool):
            return MASK if self.text(str(obj)) != str(obj) else obj
        return obj

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        # Names are masked too: a server may echo anything it was sent, in a name as well.
        return {
            self.text(name): MASK if name.lower() in self._headers else self.text(str(value))
            for name, value in headers.items()
        }


@functools.lru_cache(maxsize=64)
def _masker(values: tuple[str, ...], secret_headers: tuple[str, ...]) -> Masker:
    return Masker(credentials=dict(enumerate(values)), secret_headers=secret_headers)


def masker_for(credentials: Mapping[str, str], secret_headers: Iterable[str] = ()) -> Masker:
    """A Masker shared by the calls of one credential version: building one costs about a
    millisecond, as much as a whole send to a fast provider."""
    values = tuple(sorted(v for v in credentials.values() if isinstance(v, str) and v))
    return _masker(values, tuple(secret_headers))
