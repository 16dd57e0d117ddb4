from integrations.masking import MASK, Masker, excerpt


def test_credential_values_are_masked_plain_and_url_encoded():
    masker = Masker(credentials={"token": "a b/c+d", "api_key": "k3y-value"})
    url = "https://x.example/1/cards?key=k3y-value&token=a+b%2Fc%2Bd&other=a%20b%2Fc%2Bd"
    assert masker.text(url) == f"https://x.example/1/cards?key={MASK}&token={MASK}&other={MASK}"
    assert masker.text('{"token": "a b/c+d"}') == f'{{"token": "{MASK}"}}'


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


def test_longer_values_are_masked_before_their_substrings():
    masker = Masker(credentials={"a": "abc", "b": "abcdef"})
    assert masker.text("abcdef abc") == f"{MASK} {MASK}"


def test_excerpt_limits_bytes_and_text():
    assert excerpt(b"x" * 30, 10) == "x" * 10
    assert excerpt("y" * 30, 5) == "y" * 5
    assert excerpt(None, 5) == ""
