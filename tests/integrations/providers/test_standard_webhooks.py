import pytest

from integrations.providers.standard_webhooks import sign_headers
from integrations.providers.types import SignatureInvalid
from integrations.registry import get_provider
from tests.integrations.providers.helpers import fixture_bytes

# Vector A (python/js/ruby/csharp/php library tests) and vector B (rust), webhook-platforms.md §4.
A_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
A_ID, A_TS, A_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
A_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
B_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
B_ID, B_TS = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553
B_BODY = b'{"email":"test@example.com","username":"test_user"}'
B_SIG = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
OTHER = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="


def _headers(msg_id=A_ID, ts=A_TS, sig=A_SIG):
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def _verify(body=A_BODY, headers=None, secrets=((1, A_SECRET),), now=A_TS):
    return get_provider("standard_webhooks").verify(
        body, _headers() if headers is None else headers, list(secrets), "", now=now
    )


def test_sign_matches_vectors():
    assert sign_headers(msg_id=A_ID, body=A_BODY, secrets=[A_SECRET], timestamp=A_TS) == _headers()
    signed = sign_headers(msg_id=B_ID, body=B_BODY, secrets=[B_SECRET], timestamp=B_TS)
    assert signed["webhook-signature"] == B_SIG


def test_verify_vectors():
    assert _verify() == 1
    assert _verify(B_BODY, _headers(B_ID, B_TS, B_SIG), [(7, B_SECRET)], now=B_TS) == 7


def test_multi_signature_header_passes_and_v2_is_ignored():
    sig = " ".join([OTHER, OTHER.replace("v1,", "v2,"), A_SIG, OTHER])
    assert _verify(headers=_headers(sig=sig)) == 1


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",
    ],
)
def test_unpadded_secrets_work(secret):
    signed = sign_headers(msg_id=A_ID, body=A_BODY, secrets=[secret], timestamp=A_TS)
    assert _verify(headers=signed, secrets=[(1, secret)]) == 1


@pytest.mark.parametrize(
    "headers",
    [
        _headers(sig="v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="),
        _headers(sig="v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU="),
        _headers(sig="v1,dawfeoifkpqwoekfpqoekf"),
        _headers(sig="v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd"),
        _headers(sig="v1,"),
        _headers(sig="v1"),
        _headers(ts="hello"),
        _headers(ts="161426533.0"),
        {k: v for k, v in _headers().items() if k != "webhook-id"},
        {k: v for k, v in _headers().items() if k != "webhook-timestamp"},
        {k: v for k, v in _headers().items() if k != "webhook-signature"},
    ],
    ids=[
        "last-char",
        "rust-no-verify",
        "garbage",
        "truncated",
        "empty",
        "partial",
        "ts-hello",
        "ts-float",
        "no-id",
        "no-timestamp",
        "no-signature",
    ],
)
def test_negative_vectors(headers):
    with pytest.raises(SignatureInvalid):
        _verify(headers=headers)


@pytest.mark.parametrize("offset", [-(5 * 60 + 1), 5 * 60 + 1])
def test_timestamp_tolerance_both_ways(offset):
    assert _verify(now=A_TS + 300) == 1 and _verify(now=A_TS - 300) == 1
    with pytest.raises(SignatureInvalid, match="tolerance"):
        _verify(now=A_TS + offset)


@pytest.mark.parametrize("secret", ["", "whsec_"])
def test_empty_secret_matches_nothing(secret):
    with pytest.raises(SignatureInvalid):
        _verify(secrets=[(1, secret)])


def test_fixture_rotation_tamper_and_normalise():
    body = fixture_bytes("standard_webhooks", "invoice_paid__basic")
    provider = get_provider("standard_webhooks")
    old = sign_headers(msg_id="msg_1", body=body, secrets=["whsec_b2xk"], timestamp=A_TS)
    assert provider.verify(body, old, [(2, A_SECRET), (1, "whsec_b2xk")], "", now=A_TS) == 1
    both = sign_headers(msg_id="msg_1", body=body, secrets=[A_SECRET, "whsec_b2xk"], timestamp=A_TS)
    assert provider.verify(body, both, [(2, A_SECRET)], "", now=A_TS) == 2
    with pytest.raises(SignatureInvalid):
        provider.verify(body.replace(b"2000", b"1"), old, [(1, "whsec_b2xk")], "", now=A_TS)
    with pytest.raises(SignatureInvalid):  # wrong secret
        provider.verify(body, old, [(2, A_SECRET)], "", now=A_TS)
    assert provider.event_id(body, old) == "msg_1"
    event = provider.normalise(body, old)
    assert (event.type, event.occurred_at) == ("invoice.paid", "2022-11-03T20:26:10.344522Z")
    assert event.data["amount"] == 2000
