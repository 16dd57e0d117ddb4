"""A URL's host as the HTTP clients read it. ``urllib.parse`` and urllib3 (under requests, and
botocore) disagree on some URLs: for ``https://a.example\\@b.example/`` urlsplit says b.example
and urllib3 connects to a.example. A check made with one parser and a connection made with the
other would approve one host and reach another, so such URLs are refused outright, as are URLs
carrying a user name or password (those belong in a credential)."""

from urllib.parse import SplitResult, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

__all__ = ("UrlRefused", "url_host", "url_split")


class UrlRefused(ValueError):
    pass


def url_split(url: str) -> SplitResult:
    """``urlsplit(url)`` once its host is the one urllib3 connects to; else ``UrlRefused``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range
        theirs = parse_url(url)
    except (ValueError, LocationParseError):
        raise UrlRefused("Enter a valid URL.") from None
    if "\\" in parts.netloc:
        raise UrlRefused("A URL's host part may not contain a backslash.")
    if "@" in parts.netloc:
        raise UrlRefused("A URL may not carry a user name or password; keep them in a credential.")
    if (theirs.host or "").strip("[]").lower() != (parts.hostname or ""):
        raise UrlRefused("The URL's host is ambiguous: HTTP clients read it differently.")
    return parts


def url_host(url: str) -> str | None:
    """The host HTTP clients connect to, or None for a URL they could read differently."""
    try:
        return url_split(url).hostname
    except UrlRefused:
        return None
