import pytest

# Limiter state in Redis outlives each test's transaction; every delivery test starts afresh.
from tests.integrations.limits.fixtures import fresh_limits  # noqa: F401

CARD = "5abbe4b7ddc1b351ef961414"
LIST = "5abbe4b7ddc1b351ef961415"
TRELLO_KEY = "a" * 31 + "1"
TRELLO_TOKEN = "b" * 63 + "2"
CARD_URL = f"https://api.trello.com/1/cards/{CARD}"
STAGES = {"review": "5abbe4b7ddc1b351ef9614a1", "done": "5abbe4b7ddc1b351ef9614a2"}


def trello_customer_at(fake_url: str, **config):
    """acme (region eu) with a Trello credential of its own and an integration at the fake
    provider server's ``/trello``, its workflow stages mapped; ``config`` adds settings."""
    from credentials.services import credential_create
    from customers.models import Customer, Region
    from integrations.services import integration_create

    region = Region.objects.create(code="eu", name="EU")
    customer = Customer.objects.create(slug="acme", name="Acme", region=region)
    credential_create(
        provider="trello",
        purpose="api",
        customer=customer,
        fields={"api_key": "a" * 32, "token": "b" * 64},
    )
    integration_create(
        customer=customer,
        provider_key="trello",
        config={"base_url": f"{fake_url}/trello", "stages": STAGES, **config},
    )
    return customer


@pytest.fixture
def trello_credential(acme):
    from credentials.services import credential_create

    return credential_create(
        provider="trello",
        purpose="api",
        customer=acme,
        label="acme trello",
        fields={"api_key": TRELLO_KEY, "token": TRELLO_TOKEN},
    )


@pytest.fixture
def move_card():
    """Body of a ``trello.move_card`` delivery for acme."""
    return {
        "customer": "acme",
        "action": "trello.move_card",
        "input": {"card_id": CARD, "list_id": LIST},
    }


@pytest.fixture
def two_pending_one_dead(acme):
    """Three queued ``trello.move_card`` deliveries for acme; the oldest is a dead letter."""
    from integrations.deliveries import services
    from integrations.models import Delivery

    for n in range(3):
        services.delivery_create(
            api_key=None,
            customer="acme",
            action="trello.move_card",
            input={"card_id": CARD, "list_id": f"{n:024x}"},
        )
    Delivery.objects.filter(pk=Delivery.objects.order_by("pk").first().pk).update(status="dead")
