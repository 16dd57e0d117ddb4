import pytest

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
