import pytest

from integrations.limits.stores import limit_store

CARD = "5abbe4b7ddc1b351ef961414"
LIST = "5abbe4b7ddc1b351ef961415"
TRELLO_KEY = "a" * 31 + "1"
TRELLO_TOKEN = "b" * 63 + "2"
CARD_URL = f"https://api.trello.com/1/cards/{CARD}"


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


@pytest.fixture(autouse=True)
def _fresh_limits(request):
    """Rate-limit windows, cool-downs and breakers start empty: in Redis they outlive the
    test's database transaction."""
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("django_db_blocker").unblock()
        limit_store().reset()
        request.getfixturevalue("django_db_blocker").restore()
    yield
