import pytest

from credentials.crypto import generate_key

KEY_A = generate_key()
KEY_B = generate_key()

TRELLO_FIELDS = {"api_key": "a" * 32, "token": "t" * 64}


@pytest.fixture(autouse=True)
def encryption_keys(settings):
    """Explicit master keys: tests never depend on the development key in var/."""
    settings.SWITCHYARD_ENCRYPTION_KEYS = [KEY_A]
    settings.SWITCHYARD_USES_DEVELOPMENT_KEY = False
    return settings


@pytest.fixture
def region_ap(db):
    from customers.models import Region

    return Region.objects.create(code="ap", name="Asia Pacific")


@pytest.fixture
def trello_acme(acme):
    from credentials.services import credential_create

    return credential_create(provider="trello", purpose="api", customer=acme, fields=TRELLO_FIELDS)
