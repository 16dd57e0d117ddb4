from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from credentials.services import credential_resolve

NEW = '{"api_key": "' + "c" * 32 + '", "token": "command-token"}'


def test_rotate_reads_fields_from_stdin(trello_acme, acme):
    out = StringIO()
    call_command(
        "credentials_rotate",
        str(trello_acme.pk),
        "--grace-seconds",
        "0",
        stdin=StringIO(NEW),
        stdout=out,
    )
    assert "version 2" in out.getvalue()
    assert "command-token" not in out.getvalue()
    assert credential_resolve(provider="trello", customer=acme).fields["token"] == "command-token"
    entry = trello_acme.audit_entries.first()
    assert (entry.actor, entry.action) == ("command:credentials_rotate", "rotate")


@pytest.mark.parametrize(
    ("stdin", "args", "message"),
    [
        ("not json {secret", [], "not a JSON object"),
        ('{"api_key": "x"}', [], "fields.token"),
        (NEW, ["--grace-seconds", "-1"], "grace_seconds"),
    ],
)
def test_rotate_errors(trello_acme, stdin, args, message):
    with pytest.raises(CommandError, match=message) as failure:
        call_command("credentials_rotate", str(trello_acme.pk), *args, stdin=StringIO(stdin))
    assert "secret" not in str(failure.value)


def test_rotate_unknown_credential(db):
    with pytest.raises(CommandError, match="No credential"):
        call_command("credentials_rotate", "404", stdin=StringIO(NEW))
