import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from credentials.crypto import DecryptionFailed, Keyring
from credentials.models import CredentialVersion
from credentials.services import credential_create, credential_resolve, credential_rotate
from tests.credentials.conftest import KEY_A, KEY_B

ROOT = Path(__file__).resolve().parents[2]


def _reencrypt(batch_size=2) -> str:
    out = StringIO()
    call_command("credentials_reencrypt", batch_size=batch_size, stdout=out)
    return out.getvalue()


def test_master_key_rotation(settings, acme, globex, region_eu):
    settings.SWITCHYARD_ENCRYPTION_KEYS = [KEY_A]
    acme_cred = credential_create(
        provider="trello", purpose="api", customer=acme, fields={"api_key": "ka", "token": "ta"}
    )
    credential_rotate(credential=acme_cred, fields={"api_key": "ka2", "token": "ta2"})
    credential_create(
        provider="trello", purpose="api", customer=globex, fields={"api_key": "kg", "token": "tg"}
    )
    credential_create(
        provider="miro", purpose="api", region=region_eu, fields={"access_token": "m"}
    )
    id_a, id_b = Keyring([KEY_A]).primary_id, Keyring([KEY_B]).primary_id

    settings.SWITCHYARD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    report = _reencrypt()
    assert f"key {id_b} (primary): 4 versions" in report
    assert f"key {id_a} (fallback): 0 versions" in report
    assert set(CredentialVersion.objects.values_list("key_id", flat=True)) == {id_b}
    assert "Re-encrypted 0 versions." in _reencrypt()  # idempotent

    settings.SWITCHYARD_ENCRYPTION_KEYS = [KEY_B]
    assert credential_resolve(provider="trello", customer=acme).fields == {
        "api_key": "ka2",
        "token": "ta2",
    }
    assert credential_resolve(provider="trello", customer=globex).fields["token"] == "tg"
    assert credential_resolve(provider="miro", customer=acme).fields == {"access_token": "m"}
    previous = acme_cred.versions.get(version=1)
    from credentials.services import version_decrypt

    assert version_decrypt(previous) == {"api_key": "ka", "token": "ta"}


def test_reencrypt_resumes_after_an_interruption(settings, acme, globex):
    for customer in (acme, globex):
        credential_create(
            provider="trello",
            purpose="api",
            customer=customer,
            fields={"api_key": "k", "token": "t"},
        )
    settings.SWITCHYARD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    from credentials.services import credential_versions_reencrypt

    assert credential_versions_reencrypt(batch_size=1) == 1  # then "interrupted"
    report = _reencrypt()
    assert "Re-encrypted 1 versions." in report
    assert f"key {Keyring([KEY_A]).primary_id} (fallback): 0 versions" in report


def test_unknown_key_is_reported(settings, trello_acme):
    settings.SWITCHYARD_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(DecryptionFailed, match="not in SWITCHYARD_ENCRYPTION_KEYS"):
        credential_resolve(provider="trello", customer=trello_acme.customer)


def test_ciphertext_swapped_from_another_customer_fails_clearly(acme, globex):
    fields = {"api_key": "k", "token": "t"}
    mine = credential_create(provider="trello", purpose="api", customer=acme, fields=fields)
    theirs = credential_create(
        provider="trello", purpose="api", customer=globex, fields={"api_key": "g", "token": "g"}
    )
    stolen = theirs.versions.get()
    mine.versions.update(ciphertext=stolen.ciphertext, key_id=stolen.key_id)
    with pytest.raises(DecryptionFailed) as failure:
        credential_resolve(provider="trello", customer=acme)
    message = str(failure.value)
    assert f"credential {mine.pk} version 1" in message
    assert "does not belong to this row" in message


def _django_setup(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SWITCHYARD_ENCRYPTION_KEYS")}
    base.update(env, DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY="k" * 50)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
    )


def test_production_refuses_to_start_without_keys():
    result = _django_setup(DEBUG="false")
    assert result.returncode != 0
    assert "SWITCHYARD_ENCRYPTION_KEYS must be set" in result.stderr


def test_production_starts_with_keys():
    result = _django_setup(DEBUG="false", SWITCHYARD_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}")
    assert result.returncode == 0, result.stderr
