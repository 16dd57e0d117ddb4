"""Rotate one credential from a shell or a deployment script.

The new fields are read as a JSON object from standard input, never from arguments, so they do
not end up in shell history or the process list:

    echo '{"api_key": "…", "token": "…"}' | manage.py credentials_rotate 7 --grace-seconds 3600
"""

import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from credentials.models import Credential
from credentials.services import DEFAULT_GRACE_SECONDS, CredentialConflict, credential_rotate


class Command(BaseCommand):
    help = "Rotate a credential to new fields read as JSON from stdin."
    stealth_options = ("stdin",)  # call_command(..., stdin=StringIO(...)) in tests

    def add_arguments(self, parser):
        parser.add_argument("credential_id", type=int)
        parser.add_argument("--grace-seconds", type=int, default=DEFAULT_GRACE_SECONDS)
        parser.add_argument("--reason", default="")

    def handle(self, *args, credential_id, grace_seconds, reason, **options):
        credential = Credential.objects.filter(pk=credential_id).first()
        if credential is None:
            raise CommandError(f"No credential with id {credential_id}.")
        stdin = options.get("stdin", sys.stdin)
        try:
            fields = json.loads(stdin.read())
        except json.JSONDecodeError:
            # The decoder's message could quote part of the input, i.e. of a secret.
            raise CommandError("Standard input is not a JSON object of fields.") from None
        try:
            version = credential_rotate(
                credential=credential,
                fields=fields,
                grace_seconds=grace_seconds,
                created_by="command:credentials_rotate",
                reason=reason,
            )
        except ValidationError as exc:
            raise CommandError(f"Invalid input: {exc.message_dict}") from None
        except CredentialConflict as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{credential} is now at version {version.version} ({version.hint})."
            )
        )
