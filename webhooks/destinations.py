"""The SSRF guard for subscription URLs: loopback, private, link-local and other non-public
addresses are refused unless a subscription explicitly allows them.

The host is resolved and every address it resolves to is checked, so a public-looking name that
points inside the network is refused too. Checked when a subscription is saved and again before
each send (DNS answers change), and the connection itself refuses a non-public peer
(``integrations.deliveries.http``), so an answer that changes between check and connect
(DNS rebinding) gets nowhere either."""

import socket
from urllib.parse import urlsplit

from integrations.deliveries.http import is_public_address

__all__ = ("DestinationRefused", "destination_check")


class DestinationRefused(ValueError):
    """The message says why, naming the URL's host and the offending address."""


def _addresses(host: str) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise DestinationRefused(f"Host '{host}' does not resolve.") from None
    return {info[4][0] for info in infos}


def destination_check(url: str, *, allow_private: bool) -> None:
    """Raise ``DestinationRefused`` unless ``url`` is an http(s) URL whose host resolves only to
    public addresses (any resolvable host when ``allow_private``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("Enter an http(s) URL with a host.")
    addresses = _addresses(parts.hostname)
    if allow_private:
        return
    private = sorted(a for a in addresses if not is_public_address(a))
    if private:
        raise DestinationRefused(
            f"Host '{parts.hostname}' resolves to {private[0]}, a loopback, private or otherwise "
            "non-public address; set allow_private to deliver there."
        )
