import pytest
from rest_framework.test import APIClient

from customers.services import api_key_create


@pytest.fixture
def acme_api(acme):
    """An app key limited to acme."""
    _, raw = api_key_create(name="acme-only", customers=[acme])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client
