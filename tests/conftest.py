import pytest
from rest_framework.test import APIClient

from customers.models import Customer, Region
from customers.services import api_key_create

pytest_plugins = ["tests.browser.fixtures", "tests.fakeprovider_fixture"]


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
