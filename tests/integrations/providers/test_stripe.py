import pytest

from integrations.providers.stripe import signature_header
from integrations.providers.types import SignatureInvalid
from integrations.registry import get_provider
from tests.integrations.providers.helpers import fixture_bytes

SECRET = "whsec_test_secret"
NOW = 1_700_000_000


def _verify(body, header, secrets=((1, SECRET),), now=NOW):
    return get_provider("stripe").verify(
        body, {"Stripe-Signature": header}, list(secrets), "", now=now
    )


def test_locally_computed_vector():
    header = "t=1700000000,v1=0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd"
    assert _verify(b'{"id":"evt_1","object":"event"}', header) == 1


def test_fixture_with_bad_extra_signature_and_v0_passes():
    body = fixture_bytes("stripe", "invoice_paid__basic")
    header = signature_header(body=body, secret=SECRET, timestamp=NOW) + ",v1=bad_signature,v0=abc"
    assert _verify(body, header) == 1


def test_rotation_grace_returns_older_version():
    body = fixture_bytes("stripe", "invoice_paid__basic")
    header = signature_header(body=body, secret="whsec_old", timestamp=NOW)
    assert _verify(body, header, secrets=[(5, SECRET), (4, "whsec_old")]) == 4


def test_tolerance_is_300_seconds():
    body = fixture_bytes("stripe", "invoice_paid__basic")
    header = signature_header(body=body, secret=SECRET, timestamp=NOW)
    assert _verify(body, header, now=NOW + 300) == 1
    with pytest.raises(SignatureInvalid, match="tolerance"):
        _verify(body, header, now=NOW + 301)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("tampered", "No signature"),
        ("wrong-secret", "No signature"),
        ("only-v0", "expected scheme v1"),
        ("no-timestamp", "Unable to extract"),
    ],
)
def test_rejects(case, match):
    body = fixture_bytes("stripe", "invoice_paid__basic")
    header = signature_header(
        body=body, secret="whsec_wrong" if case == "wrong-secret" else SECRET, timestamp=NOW
    )
    if case == "tampered":
        body = body.replace(b"2000", b"20")
    if case == "only-v0":
        header = header.replace("v1=", "v0=")
    if case == "no-timestamp":
        header = header.split(",", 1)[1]
    with pytest.raises(SignatureInvalid, match=match):
        _verify(body, header)


def test_event_id_and_normalise():
    body = fixture_bytes("stripe", "invoice_paid__basic")
    stripe = get_provider("stripe")
    assert stripe.event_id(body, {}) == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    event = stripe.normalise(body, {})
    assert event.type == "stripe.invoice.paid"
    assert event.occurred_at == "2023-11-14T22:13:20+00:00"
    assert event.data["object"]["id"] == "in_1NG8Dt2eZvKYlo2C6sQZ6qbs"
