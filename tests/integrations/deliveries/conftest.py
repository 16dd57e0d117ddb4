import time

import pytest
import requests

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


def api_session(name: str) -> requests.Session:
    """A requests session carrying a new API key, for tests that call a running web process."""
    from customers.services import api_key_create

    _, raw_key = api_key_create(name=name)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {raw_key}"
    return session


def proceed(stack, session, to="done") -> int:
    """Ask the running platform to move acme's card to stage ``to``; the delivery's id."""
    response = session.post(
        f"{stack.web_url}/api/v1/deliveries/",
        json={"customer": "acme", "action": "workflow.proceed", "input": {"item": CARD, "to": to}},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_finished(stack, session, delivery_id, timeout=30) -> dict:
    """The delivery's detail once it succeeded, died or was cancelled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = session.get(f"{stack.web_url}/api/v1/deliveries/{delivery_id}/", timeout=10).json()
        if detail["status"] in ("succeeded", "dead", "cancelled"):
            return detail
        time.sleep(0.2)
    raise AssertionError(f"delivery {delivery_id} did not finish: {detail}\n{stack.logs()}")


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
