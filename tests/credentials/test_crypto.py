import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from credentials.checks import check_encryption_keys
from credentials.crypto import DecryptionFailed, Keyring, development_key, generate_key
from tests.credentials.conftest import KEY_A, KEY_B


def test_round_trip_records_the_primary_key_id():
    ring = Keyring([KEY_A, KEY_B])
    key_id, blob = ring.encrypt(b"secret", aad=b"row 1")
    assert key_id == ring.primary_id == Keyring([KEY_A]).primary_id
    assert b"secret" not in blob
    assert ring.decrypt(key_id, blob, aad=b"row 1", what="row 1") == b"secret"


def test_key_ids_are_stable_distinct_and_reveal_nothing():
    a, b = Keyring([KEY_A]).primary_id, Keyring([KEY_B]).primary_id
    assert a != b
    assert a == Keyring([KEY_A, KEY_B]).key_ids[0]
    assert a not in KEY_A


def test_other_associated_data_fails_clearly():
    ring = Keyring([KEY_A])
    key_id, blob = ring.encrypt(b"secret", aad=b"credential 1 version 1")
    with pytest.raises(DecryptionFailed, match="does not belong to this row") as failure:
        ring.decrypt(key_id, blob, aad=b"credential 2 version 1", what="credential 2 version 1")
    assert "credential 2 version 1" in str(failure.value)
    assert "secret" not in str(failure.value).replace("tampered", "")


def test_wrong_or_missing_key_fails_clearly():
    key_id, blob = Keyring([KEY_A]).encrypt(b"secret", aad=b"x")
    with pytest.raises(DecryptionFailed, match="not in SWITCHYARD_ENCRYPTION_KEYS"):
        Keyring([KEY_B]).decrypt(key_id, blob, aad=b"x", what="row")
    impostor = Keyring([KEY_B])
    with pytest.raises(DecryptionFailed, match="does not belong"):
        impostor._keys[key_id] = impostor._keys[impostor.primary_id]
        impostor.decrypt(key_id, blob, aad=b"x", what="row")


def test_nonces_differ_per_encryption():
    ring = Keyring([KEY_A])
    assert ring.encrypt(b"s", aad=b"x")[1] != ring.encrypt(b"s", aad=b"x")[1]


def test_fingerprint_is_keyed():
    assert Keyring([KEY_A]).fingerprint(b"s") == Keyring([KEY_A, KEY_B]).fingerprint(b"s")
    assert Keyring([KEY_A]).fingerprint(b"s") != Keyring([KEY_B]).fingerprint(b"s")


@pytest.mark.parametrize("bad", ["not base64!!", "c2hvcnQ=", ""])
def test_malformed_keys_are_refused_without_echoing_them(bad):
    with pytest.raises(ImproperlyConfigured) as failure:
        Keyring([KEY_A, bad] if bad else [])
    if bad:
        assert "entry 2" in str(failure.value)
        assert bad not in str(failure.value)


@pytest.mark.parametrize(
    ("keys", "ids"),
    [
        ([], ["credentials.E001"]),
        ([KEY_A, "c2hvcnQ="], ["credentials.E002"]),
        ([KEY_A, KEY_A], ["credentials.E003"]),
        ([KEY_A, KEY_B], []),
    ],
)
def test_system_check(settings, keys, ids):
    settings.SWITCHYARD_ENCRYPTION_KEYS = keys
    messages = check_encryption_keys()
    assert [m.id for m in messages] == ids
    assert all(m.level == checks.ERROR for m in messages)
    assert all("c2hvcnQ=" not in m.msg for m in messages)


def test_system_check_warns_about_the_development_key(settings):
    settings.SWITCHYARD_USES_DEVELOPMENT_KEY = True
    assert [m.id for m in check_encryption_keys()] == ["credentials.W001"]


def test_development_key_is_generated_once(tmp_path, capsys):
    first = development_key(tmp_path)
    assert "generated a development key" in capsys.readouterr().err
    assert development_key(tmp_path) == first
    assert capsys.readouterr().err == ""
    assert Keyring([first]).primary_id
    assert list(tmp_path.iterdir()) == [tmp_path / "encryption-key"]
    assert (tmp_path / "encryption-key").stat().st_mode & 0o077 == 0


def test_generated_keys_are_valid_and_random():
    assert generate_key() != generate_key()
    Keyring([generate_key()])
