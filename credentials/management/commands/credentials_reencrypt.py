"""Move every stored credential version onto the primary master key.

After prepending a new key to SWITCHYARD_ENCRYPTION_KEYS, run this; when it reports that the old
key protects 0 versions, drop the old key from the list. Interrupting it is safe: a re-run
continues where it stopped. Subscription signing secrets are credential versions too: they are
moved and counted with the rest (and named in the count).
"""

from django.core.management.base import BaseCommand

from credentials.crypto import keyring
from credentials.models import OWNED_PURPOSES
from credentials.selectors import version_counts_by_key
from credentials.services import credential_versions_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt credential versions under the primary key, in batches; report key usage."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args, batch_size, **options):
        total = 0
        while moved := credential_versions_reencrypt(batch_size=batch_size):
            total += moved
            self.stdout.write(f"Re-encrypted {total} versions so far.")
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} versions."))
        ring = keyring()
        counts = version_counts_by_key()
        owned = version_counts_by_key(purposes=OWNED_PURPOSES)
        for key_id in dict.fromkeys([*ring.key_ids, *counts]):
            role = (
                "primary"
                if key_id == ring.primary_id
                else ("fallback" if key_id in ring.key_ids else "NOT CONFIGURED")
            )
            of_them = (
                f", {owned[key_id]} of them subscription signing secrets"
                if owned.get(key_id)
                else ""
            )
            self.stdout.write(f"key {key_id} ({role}): {counts.get(key_id, 0)} versions{of_them}")
