"""Keep secrets out of stored request/response records and error messages.

Two layers: headers that carry secrets are replaced wholesale, and every credential value is
replaced wherever it appears (Trello and GA4 put credentials in the query string, and
connection errors quote the URL), in plain and URL-encoded form."""

from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from integrations.constants import SECRET_HEADERS

__all__ = ("MASK", "Masker", "excerpt")

MASK = "****"


def excerpt(body: bytes | str | None, limit: int) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        body = body[:limit].decode("utf-8", errors="replace")
    return body[:limit]


class Masker:
    def __init__(self, *, credentials: Mapping[str, str], secret_headers: Iterable[str] = ()):
        values = {value for value in credentials.values() if isinstance(value, str) and value}
        variants = {
            form for value in values for form in (value, quote(value, safe=""), quote_plus(value))
        }
        # Longest first, so a value containing another is masked whole.
        self._values = sorted(variants, key=len, reverse=True)
        self._headers = SECRET_HEADERS | {name.lower() for name in secret_headers}

    def text(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return text

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            name: MASK if name.lower() in self._headers else self.text(str(value))
            for name, value in headers.items()
        }
