import ipaddress
import socket

import pytest
from rest_framework.test import APIClient

from customers.authentication import ApiKeyAuthentication, UnblockedAddresses
from customers.models import Customer, Region
from customers.services import api_key_create
from integrations import egress

pytest_plugins = ["tests.browser.fixtures", "tests.fakeprovider_fixture"]

# What egress resolves every name to during tests (other than IP literals and localhost): a
# public address, so the policy lets it through; the connect guard then keeps it on this machine.
TEST_PUBLIC_ADDRESS = "93.184.215.14"


def _loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == "localhost"
    return ip.is_loopback or bool(ip.version == 6 and ip.ipv4_mapped and ip.ipv4_mapped.is_loopback)


@pytest.fixture(autouse=True)
def fresh_unblocked_addresses(monkeypatch):
    """Each test starts with no address remembered as unblocked by an earlier one."""
    monkeypatch.setattr(ApiKeyAuthentication, "unblocked", UnblockedAddresses())


@pytest.fixture(autouse=True)
def hermetic_network(monkeypatch):
    """Nothing leaves this machine: egress resolves names without asking a DNS server (names
    under .invalid do not resolve), and a connect() to anything but loopback fails."""
    real_getaddrinfo, real_connect, real_connect_ex = (
        socket.getaddrinfo,
        socket.socket.connect,
        socket.socket.connect_ex,
    )

    def resolve(host, port, family=0):
        numeric = socket.AI_NUMERICHOST  # IP literals in every spelling (0x7f000001, 127.1, …)
        try:
            return real_getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, numeric)
        except socket.gaierror:
            pass
        name = host.lower().rstrip(".")
        if name == "localhost":
            return real_getaddrinfo(host, port, family, socket.SOCK_STREAM)
        if name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (TEST_PUBLIC_ADDRESS, port or 0))]

    def guard(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(str(address[0])):
            raise OSError(f"test network guard: no connection to {address[0]} from tests")

    def connect(sock, address):
        guard(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        guard(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(egress, "_getaddrinfo", resolve)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def region_eu(db):
    return Region.objects.create(code="eu", name="European Union")


@pytest.fixture
def region_us(db):
    return Region.objects.create(code="us", name="United States")


@pytest.fixture
def acme(region_eu):
    return Customer.objects.create(slug="acme", name="Acme GmbH", region=region_eu, tier="premium")


@pytest.fixture
def globex(region_us):
    return Customer.objects.create(slug="globex", name="Globex Inc.", region=region_us)


@pytest.fixture
def api_key(db):
    """An admin key (every customer, configuration too): (row, raw key)."""
    return api_key_create(name="test-app", scope="admin")


@pytest.fixture
def api(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    return client


@pytest.fixture
def anonymous_api():
    return APIClient()
