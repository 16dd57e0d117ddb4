"""Every JSON-answering operation classifies an unusable 2xx body instead of raising."""

import pytest
import responses

CASES = [
    (
        "trello.move_card",
        {"card_id": "abc", "list_id": "5abbe4b7ddc1b351ef961412"},
        {"api_key": "k", "token": "t"},
        None,
        ("PUT", "https://api.trello.com/1/cards/abc"),
    ),
    (
        "miro.move_item",
        {"board_id": "b", "item_id": "i", "parent_id": "f"},
        {"access_token": "t"},
        None,
        ("PATCH", "https://api.miro.com/v2/boards/b/items/i"),
    ),
    (
        "shopify.set_order_tags",
        {"order_id": 1, "tags": ["a"]},
        {"access_token": "t"},
        {"shop": "s"},
        ("PUT", "https://s.myshopify.com/admin/api/2025-01/orders/1.json"),
    ),
    (
        "selenium.create_session",
        {"always_match": {"browserName": "firefox"}},
        {},
        {"base_url": "http://grid:4444"},
        ("POST", "http://grid:4444/session"),
    ),
]
BODIES = {
    "html-page": b"<!DOCTYPE html><html><body><h1>Oops</h1></body></html>",
    "empty": b"",
    "json-list": b"[1, 2]",
    "wrong-object": b'{"unexpected": {"shape": true}}',
    "broken-json": b'{"id": ',
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize(
    ("action", "input", "credentials", "config", "route"), CASES, ids=[c[0] for c in CASES]
)
@responses.activate
def test_unusable_success_body_is_terminal_malformed(
    execute, action, input, credentials, config, route, body
):
    responses.add(route[0], route[1], body=body, status=200)
    outcome = execute(action, input, credentials=credentials, config=config)
    assert (outcome.outcome, outcome.error_class, outcome.status) == (
        "terminal",
        "malformed_response",
        200,
    )
