"""Properties of every inbound webhook verifier (``BaseProvider.verify``) and of what reads a
verified body (``event_id``, ``normalise``).

Signatures here are built from each provider's documented scheme, independently of the adapters:
a body signed with the right secret verifies, a single changed byte of body or signature is
refused with ``SignatureInvalid``, and no input at all makes a verifier raise anything else (the
receiver answers 500 for any other exception, and 401 for ``SignatureInvalid``)."""

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.constants import (
    HEADER_SHOPIFY_EVENT_ID,
    HEADER_SHOPIFY_HMAC,
    HEADER_SHOPIFY_TOPIC,
    HEADER_SHOPIFY_TRIGGERED_AT,
    HEADER_SHOPIFY_WEBHOOK_ID,
    HEADER_STRIPE_SIGNATURE,
    HEADER_TRELLO_WEBHOOK,
    HEADER_WEBHOOK_ID,
    HEADER_WEBHOOK_SIGNATURE,
    HEADER_WEBHOOK_TIMESTAMP,
)
from integrations.providers.types import PayloadInvalid, SignatureInvalid
from integrations.registry import get_provider, providers
from tests.property.strategies import header_names, header_values
from webhooks.models import MAX_TOLERANCE_SECONDS

NOW = 1_700_000_000
URL = "https://switchyard.example/webhooks/trello/7/"
RIGHT_VERSION = 1000


def _b64_hmac(key: bytes, message: bytes, digest) -> str:
    return base64.b64encode(hmac.new(key, message, digest).digest()).decode()


def _sign_trello(body: bytes, secret: str) -> dict[str, str]:
    # Trello signs the body followed by the callback URL, with HMAC-SHA1, base64.
    return {HEADER_TRELLO_WEBHOOK: _b64_hmac(secret.encode(), body + URL.encode(), hashlib.sha1)}


def _sign_shopify(body: bytes, secret: str) -> dict[str, str]:
    return {HEADER_SHOPIFY_HMAC: _b64_hmac(secret.encode(), body, hashlib.sha256)}


def _sign_stripe(body: bytes, secret: str) -> dict[str, str]:
    signed = f"{NOW}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return {HEADER_STRIPE_SIGNATURE: f"t={NOW},v1={digest}"}


def _standard_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def _sign_standard_webhooks(
    body: bytes, secret: str, msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
):
    signed = f"{msg_id}.{NOW}.".encode() + body
    return {
        HEADER_WEBHOOK_ID: msg_id,
        HEADER_WEBHOOK_TIMESTAMP: str(NOW),
        HEADER_WEBHOOK_SIGNATURE: f"v1,{_b64_hmac(_standard_key(secret), signed, hashlib.sha256)}",
    }


def _utf8_key(secret: str) -> bytes:
    return secret.encode()


@dataclass(frozen=True)
class Scheme:
    sign: Callable[[bytes, str], dict[str, str]]
    bodies: st.SearchStrategy[bytes]
    secrets: st.SearchStrategy[str]
    key: Callable[[str], bytes]
    # Headers whose values are signed or are the signature: changing one character must fail.
    signed_headers: tuple[str, ...]
    # Values shaped like the real header, to get garbage past the first parsing step.
    garbage: dict[str, st.SearchStrategy[str]]


text_secrets = st.text(min_size=1, max_size=40)
stripe_parts = st.tuples(
    st.sampled_from(["t", "v1", "v0", "", " t", "v1 "]),
    st.integers(NOW - 400, NOW + 400).map(str) | header_values,
).map("=".join)
standard_signatures = st.tuples(
    st.sampled_from(["v1", "v1a", "v2", ""]), st.binary(max_size=40).map(base64.b64encode)
).map(lambda parts: f"{parts[0]},{parts[1].decode()}")

SCHEMES = {
    "trello": Scheme(
        _sign_trello,
        st.binary(max_size=300),
        text_secrets,
        _utf8_key,
        (HEADER_TRELLO_WEBHOOK,),
        {HEADER_TRELLO_WEBHOOK: st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode())},
    ),
    "shopify": Scheme(
        _sign_shopify,
        st.binary(max_size=300),
        text_secrets,
        _utf8_key,
        (HEADER_SHOPIFY_HMAC,),
        {HEADER_SHOPIFY_HMAC: st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())},
    ),
    "stripe": Scheme(
        _sign_stripe,
        st.binary(max_size=300),
        text_secrets,
        _utf8_key,
        (HEADER_STRIPE_SIGNATURE,),
        {HEADER_STRIPE_SIGNATURE: st.lists(stripe_parts, max_size=4).map(",".join)},
    ),
    # The scheme signs text (the standardwebhooks library takes str): a body that is not UTF-8
    # is refused, so valid signatures are made over UTF-8 bodies only.
    "standard_webhooks": Scheme(
        _sign_standard_webhooks,
        st.text(max_size=200).map(str.encode),
        st.binary(min_size=1, max_size=64).map(lambda b: "whsec_" + base64.b64encode(b).decode()),
        _standard_key,
        (HEADER_WEBHOOK_ID, HEADER_WEBHOOK_TIMESTAMP, HEADER_WEBHOOK_SIGNATURE),
        {
            HEADER_WEBHOOK_ID: header_values,
            HEADER_WEBHOOK_TIMESTAMP: st.integers(NOW - 400, NOW + 400).map(str) | header_values,
            HEADER_WEBHOOK_SIGNATURE: st.lists(standard_signatures, max_size=3).map(" ".join),
        },
    ),
}
VERIFYING = sorted(SCHEMES)


def _same_hmac_key(scheme: Scheme, a: str, b: str) -> bool:
    # HMAC pads a short key with zero bytes, so "k" and "k\0" sign alike.
    return scheme.key(a).rstrip(b"\0") == scheme.key(b).rstrip(b"\0")


def test_every_verifying_provider_has_its_scheme_here():
    assert {p.key for p in providers() if p.verifies_webhooks} == set(SCHEMES)


@pytest.mark.parametrize("key", VERIFYING)
@given(data=st.data())
def test_a_body_signed_with_the_right_secret_verifies_among_others(key, data):
    scheme = SCHEMES[key]
    body = data.draw(scheme.bodies, label="body")
    secret = data.draw(scheme.secrets, label="secret")
    others = data.draw(
        st.lists(
            scheme.secrets.filter(lambda s: not _same_hmac_key(scheme, s, secret)), max_size=3
        ),
        label="other secrets",
    )
    position = data.draw(st.integers(0, len(others)), label="position of the right secret")
    secrets = list(enumerate(others, start=1))
    secrets.insert(position, (RIGHT_VERSION, secret))

    headers = scheme.sign(body, secret)

    assert get_provider(key).verify(body, headers, secrets, URL, now=NOW) == RIGHT_VERSION


@pytest.mark.parametrize("key", VERIFYING)
@given(data=st.data())
def test_one_changed_byte_of_the_body_is_refused(key, data):
    scheme = SCHEMES[key]
    body = data.draw(scheme.bodies.filter(bool), label="body")
    secret = data.draw(scheme.secrets, label="secret")
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    flip = data.draw(st.integers(1, 255), label="xor")
    changed = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]

    with pytest.raises(SignatureInvalid):
        get_provider(key).verify(changed, scheme.sign(body, secret), [(1, secret)], URL, now=NOW)


@pytest.mark.parametrize("key", VERIFYING)
@given(data=st.data())
def test_one_changed_character_of_a_signed_header_is_refused(key, data):
    scheme = SCHEMES[key]
    body = data.draw(scheme.bodies, label="body")
    secret = data.draw(scheme.secrets, label="secret")
    headers = scheme.sign(body, secret)
    name = data.draw(st.sampled_from(scheme.signed_headers), label="header")
    value = headers[name]
    index = data.draw(st.integers(0, len(value) - 1), label="index")
    replacement = data.draw(
        st.characters(max_codepoint=0xFF).filter(lambda c: c != value[index]), label="character"
    )
    headers[name] = value[:index] + replacement + value[index + 1 :]

    with pytest.raises(SignatureInvalid):
        get_provider(key).verify(body, headers, [(1, secret)], URL, now=NOW)


@pytest.mark.parametrize("key", VERIFYING)
@given(data=st.data())
def test_garbage_is_refused_with_signature_invalid_and_nothing_else(key, data):
    scheme = SCHEMES[key]
    own = st.one_of(
        *(
            st.tuples(st.just(name), values | header_values)
            for name, values in scheme.garbage.items()
        )
    )
    headers = dict(data.draw(st.lists(own | st.tuples(header_names, header_values), max_size=6)))
    body = data.draw(st.binary(max_size=300), label="body")
    secrets = data.draw(
        st.lists(st.tuples(st.integers(1, 10**6), st.text(max_size=40)), max_size=3),
        label="secrets",
    )
    now = data.draw(st.none() | st.just(NOW) | st.integers(0, 10**13), label="now")
    tolerance = data.draw(st.none() | st.integers(1, MAX_TOLERANCE_SECONDS), label="tolerance")

    with contextlib.suppress(SignatureInvalid):
        get_provider(key).verify(body, headers, secrets, URL, now=now, tolerance=tolerance)


# -- reading verified bodies ----------------------------------------------------------------

# Python's json module, which reads inbound bodies, accepts NaN and Infinity.
inbound_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
inbound_json = st.recursive(
    inbound_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _object(**members: st.SearchStrategy) -> st.SearchStrategy[dict]:
    """A JSON object with any of ``members`` (each also any JSON at all), plus stray keys."""
    optional = {name: strategy | inbound_json for name, strategy in members.items()}
    return st.fixed_dictionaries({}, optional=optional)


trello_bodies = _object(
    action=_object(
        id=st.text(max_size=10),
        type=st.sampled_from(["createCard", "updateCard", "commentCard", "deleteCard"]),
        date=st.text(max_size=10),
        data=_object(card=inbound_json, board=inbound_json, listAfter=inbound_json, text=st.text()),
        display=_object(translationKey=st.just("action_move_card_from_list_to_list")),
    )
)
stripe_bodies = _object(
    id=st.text(max_size=10),
    type=st.text(max_size=20),
    created=st.integers() | st.floats(),
    data=_object(object=inbound_json),
)
standard_bodies = _object(type=st.text(max_size=20), timestamp=inbound_json, data=inbound_json)
bodies = st.one_of(
    st.binary(max_size=100),
    (inbound_json | trello_bodies | stripe_bodies | standard_bodies).map(
        lambda value: json.dumps(value).encode()
    ),
)
reading_headers = st.dictionaries(
    st.sampled_from(
        [
            HEADER_SHOPIFY_TOPIC,
            HEADER_SHOPIFY_EVENT_ID,
            HEADER_SHOPIFY_WEBHOOK_ID,
            HEADER_SHOPIFY_TRIGGERED_AT,
            HEADER_WEBHOOK_ID,
        ]
    )
    | header_names,
    header_values,
    max_size=5,
)


@pytest.mark.parametrize("key", VERIFYING)
@given(body=bodies, headers=reading_headers)
def test_reading_a_verified_body_raises_payload_invalid_and_nothing_else(key, body, headers):
    """Processing retries any other exception as if it were transient, with a traceback each
    time; ``PayloadInvalid`` marks the event dead at once."""
    provider = get_provider(key)
    with contextlib.suppress(PayloadInvalid):
        assert isinstance(provider.event_id(body, headers), str)
    try:
        event = provider.normalise(body, headers)
    except PayloadInvalid:
        return
    if event is not None:
        assert isinstance(event.type, str) and event.type
        json.dumps(event.data)
