"""System checks for the egress allow list (``manage.py check``; ``--deploy`` for the warnings)."""

import ipaddress

from django.conf import settings
from django.core import checks

from integrations import egress

__all__ = ("check_egress_allow", "check_egress_allow_deploy")

# Ranges that hold no public address (so allowing them opens only internal networks). A range
# outside all of them, or any public address, is worth a warning.
_NON_PUBLIC_RANGES = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


def _entries() -> list[str]:
    entries = getattr(settings, egress.ALLOW_SETTING, None) or []
    return entries.split(",") if isinstance(entries, str) else list(entries)


def _public_range(network) -> bool:
    if network.num_addresses == 1:
        return egress.is_public_address(network.network_address)
    return not any(
        network.version == block.version and network.subnet_of(block)
        for block in _NON_PUBLIC_RANGES
    )


def _public_host(host: str) -> bool:
    try:
        infos = egress._getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False  # a name that does not resolve here opens nothing now
    return any(egress.is_public_address(info[4][0]) for info in infos)


@checks.register("switchyard")
def check_egress_allow(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    messages = []
    for entry in _entries():
        try:
            egress.parse_allow_entry(entry)
        except ValueError as exc:
            messages.append(
                checks.Error(
                    f"{egress.ALLOW_SETTING}: {exc}; the entry allows nothing.",
                    hint="Use host, host:port, [IPv6]:port, an IP address or a CIDR range.",
                    id="switchyard.E010",
                )
            )
    return messages


@checks.register("switchyard", deploy=True)
def check_egress_allow_deploy(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    messages = []
    for entry in _entries():
        try:
            parsed = egress.parse_allow_entry(entry)
        except ValueError:
            continue  # reported by check_egress_allow
        public = _public_range(parsed.network) if parsed.network else _public_host(parsed.host)
        if public:
            messages.append(
                checks.Warning(
                    f"{egress.ALLOW_SETTING} entry '{entry.strip()}' allows public addresses; "
                    "the allow list is for internal destinations only (public ones need no "
                    "entry), and a wide range lets outbound calls bypass the SSRF guard.",
                    hint="List only the internal hosts, host:port pairs or private ranges "
                    "Switchyard must reach (the fake provider, a Selenium Grid).",
                    id="switchyard.W010",
                )
            )
    return messages
