import threading

import pytest
from django.db import connection

from credentials.models import CredentialVersion
from credentials.services import CredentialConflict, credential_rotate
from tests.credentials.conftest import TRELLO_FIELDS

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_rotations_leave_exactly_one_current(trello_acme):
    """Several threads (each with its own database connection) rotate one credential at once."""
    barrier = threading.Barrier(4)
    outcomes = []

    def rotate(n):
        try:
            barrier.wait()
            credential_rotate(credential=trello_acme, fields={**TRELLO_FIELDS, "token": str(n)})
            outcomes.append("rotated")
        except CredentialConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    versions = CredentialVersion.objects.filter(credential=trello_acme)
    assert versions.filter(state=CredentialVersion.State.CURRENT).count() == 1
    assert versions.filter(state=CredentialVersion.State.PENDING).count() == 0
    assert outcomes.count("rotated") == versions.count() - 1 >= 1
    assert sorted(versions.values_list("version", flat=True)) == list(
        range(1, versions.count() + 1)
    )
