import base64
import json
import re
from urllib.parse import quote, quote_plus

import pytest

from integrations.deliveries.masking import MASK, Masker, excerpt, masker_for

# Every character that changes some encoding: quote, backslash, slash, plus, equals, non-ASCII.
SECRET = 'c4n"ary\\pa/ss+w=rd-é-Z9'
RAW = SECRET.encode()


def _json(text: str, **kwargs) -> str:
    return json.dumps(text, **kwargs)[1:-1]


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


# (form, how it is spelled in stored text), built here independently of the masker.
FORMS = [
    ("plain", SECRET),
    ("json ascii", _json(SECRET)),
    ("json utf-8", _json(SECRET, ensure_ascii=False)),
    ("json escaped slash", _json(SECRET).replace("/", "\\/")),
    ("json in json", _json(_json(SECRET))),
    ("python repr", repr(SECRET)[1:-1]),
    ("quote", quote(SECRET, safe="")),
    ("quote keeping /", quote(SECRET)),
    ("quote_plus", quote_plus(SECRET)),
    ("lower-case percent escapes", _lower_escapes(quote(SECRET, safe=""))),
    ("base64", base64.b64encode(RAW).decode()),
    ("base64 url-safe", base64.urlsafe_b64encode(RAW).decode()),
    ("base64 unpadded", base64.b64encode(RAW).decode().rstrip("=")),
    ("base64 in json", _json(base64.b64encode(RAW).decode()).replace("/", "\\/")),
    ("base64 url-encoded", quote(base64.b64encode(RAW).decode(), safe="")),
    ("latin-1 bytes read as utf-8", SECRET.encode("latin-1").decode("utf-8", errors="replace")),
    ("hex", RAW.hex()),
    ("HEX", RAW.hex().upper()),
]


@pytest.fixture
def masker():
    return Masker(credentials={"token": SECRET, "other": "unrelated-value"})


@pytest.mark.parametrize(("form", "spelled"), FORMS, ids=[form for form, _ in FORMS])
def test_every_form_of_a_secret_is_masked(masker, form, spelled):
    assert masker.text(f"before {spelled} after") == f"before {MASK} after"


@pytest.mark.parametrize("alphabet", ["standard", "url-safe"])
@pytest.mark.parametrize("before", [b"", b"u", b"us", b"use", b"user:", b"Bearer x:"])
@pytest.mark.parametrize("after", [b"", b"!", b"!?", b":more"])
def test_a_secret_base64_encoded_inside_a_larger_string_is_masked(masker, alphabet, before, after):
    encode = base64.b64encode if alphabet == "standard" else base64.urlsafe_b64encode
    encoded = encode(before + RAW + after).decode()
    head, mask, tail = masker.text(encoded).partition(MASK)
    assert mask, encoded
    # Left are the neighbours' characters and the one or two that mix their bits with the
    # secret's: nothing that encodes the secret alone.
    assert encoded.startswith(head) and encoded.endswith(tail)
    assert len(head) <= len(before) * 8 // 6 + 1
    assert len(tail) <= -(-len(after) * 8 // 6) + 1 + encoded.count("=")


@pytest.mark.parametrize(
    ("credentials", "text", "expected"),
    [
        pytest.param(
            {"token": "a b/c+d", "api_key": "k3y-value"},
            "https://x.example/1/cards?key=k3y-value&token=a+b%2Fc%2Bd&other=a%20b%2Fc%2Bd",
            f"https://x.example/1/cards?key={MASK}&token={MASK}&other={MASK}",
            id="query string, plain and url-encoded",
        ),
        pytest.param(
            {"token": "a b/c+d"}, '{"token": "a b/c+d"}', f'{{"token": "{MASK}"}}', id="json body"
        ),
        pytest.param(
            {"a": "abcd", "b": "abcdef"}, "abcdef abcd", f"{MASK} {MASK}", id="longest first"
        ),
        pytest.param(
            {"pin": "ab1"},
            "pin=ab1&fab1x=xab1 ab1",
            f"pin={MASK}&fab1x=xab1 {MASK}",
            id="short secret: whole tokens only",
        ),
        pytest.param(
            {"pin": "ab1"},
            f"{base64.b64encode(b'ab1').decode()} 616231 ab%31",
            f"{base64.b64encode(b'ab1').decode()} 616231 ab%31",
            id="short secret: no encoded forms",
        ),
        pytest.param(
            {"pin": "7"},
            "HTTP 200 after 7 ms, id 1770",
            f"HTTP 200 after {MASK} ms, id 1770",
            id="one-character secret",
        ),
        pytest.param({}, "nothing to mask", "nothing to mask", id="no credentials"),
        pytest.param(
            {"token": "tab\tand  spaces"},
            "HTTP 400: bad token tab and spaces",
            f"HTTP 400: bad token {MASK}",
            id="whitespace collapsed in an error excerpt",
        ),
        pytest.param(
            {"token": "ab  "}, "ab  abc cab", f"{MASK}abc cab", id="no form shorter than 4"
        ),
        pytest.param(
            {"token": "", "n": None, "x": 5}, "5 None", "5 None", id="empty and non-strings"
        ),
        pytest.param(
            {"token": "s3cret-token-value"},
            'body excerpt ... {"auth": "Bearer s3cret-tok',
            f'body excerpt ... {{"auth": "Bearer {MASK}',
            id="excerpt cut through a secret",
        ),
        pytest.param(
            {"token": "s3cret-token-value"},
            "ends with s3cre",
            "ends with s3cre",
            id="too little of a secret to mask",
        ),
    ],
)
def test_text_table(credentials, text, expected):
    assert Masker(credentials=credentials).text(text) == expected


def test_value_walks_keys_and_values_of_nested_json():
    masker = Masker(credentials={"token": SECRET, "pin_code": "424242"})
    result = {
        "status": 200,
        "ok": True,
        "none": None,
        "ratio": 0.5,
        "body": {
            "headers": {"Authorization": f"Bearer {SECRET}", SECRET: "as a key"},
            "echo": [_json(SECRET), base64.b64encode(b"user:" + RAW).decode(), 424242],
            "nested": [[{"deep": quote_plus(SECRET)}]],
            "tuple": ("x", SECRET),
        },
    }
    assert masker.value(result) == {
        "status": 200,
        "ok": True,
        "none": None,
        "ratio": 0.5,
        "body": {
            "headers": {"Authorization": f"Bearer {MASK}", MASK: "as a key"},
            "echo": [MASK, masker.text(base64.b64encode(b"user:" + RAW).decode()), MASK],
            "nested": [[{"deep": MASK}]],
            "tuple": ["x", MASK],
        },
    }
    assert SECRET not in json.dumps(masker.value(result), ensure_ascii=False)
    assert masker.value(None) is None


def test_denylisted_and_extra_headers_are_masked_whatever_their_case():
    masker = Masker(credentials={"token": "s3cret"}, secret_headers=["X-Api-Token"])
    headers = {
        "authorization": "Bearer anything",
        "X-Shopify-Access-Token": "shpat",
        "x-api-token": "t",
        "X-Echo": "value s3cret",
        "Accept": "application/json",
    }
    assert masker.headers(headers) == {
        "authorization": MASK,
        "X-Shopify-Access-Token": MASK,
        "x-api-token": MASK,
        "X-Echo": f"value {MASK}",
        "Accept": "application/json",
    }


def test_excerpt_limits_bytes_and_text():
    assert excerpt(b"x" * 30, 10) == "x" * 10
    assert excerpt("y" * 30, 5) == "y" * 5
    assert excerpt(None, 5) == ""


def test_masker_for_is_shared_by_calls_with_the_same_secrets():
    first = masker_for({"token": SECRET}, ("X-Api-Token",))
    assert masker_for({"other_name": SECRET}, ("X-Api-Token",)) is first
    assert masker_for({"token": SECRET}, ()) is not first
    assert first.text(f"echo {SECRET}") == f"echo {MASK}"
    assert first.headers({"X-Api-Token": "anything"}) == {"X-Api-Token": MASK}


@pytest.mark.parametrize(
    "stored",
    [
        '{"authorization":"Bearer Gl0bal\\u0026Grid\\u003cPass\\u003eword"}',  # Go encoding/json
        "<p>Gl0bal&amp;Grid&lt;Pass&gt;word</p>",  # HTML-escaped
    ],
)
def test_go_json_and_html_escapes_are_masked(stored):
    masker = Masker(credentials={"token": "Gl0bal&Grid<Pass>word"})
    assert "Gl0bal" not in masker.text(stored)


def test_upper_case_unicode_escapes_are_masked():
    masker = Masker(credentials={"token": "p\u00e4ss-secret-1"})
    assert masker.text('{"x":"p\\u00E4ss-secret-1"}') == '{"x":"****"}'
