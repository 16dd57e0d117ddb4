"""``manage.py ops_webhook_secret``: create the ops webhook's signing secret, or rotate it, and
print it once (give it to the receiver; the vault keeps it encrypted)."""

from django.core.management.base import BaseCommand

from credentials.services import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS
from integrations.ops.services import ops_signing_secret_rotate


class Command(BaseCommand):
    help = "Create or rotate the signing secret of SWITCHYARD_OPS_WEBHOOK_URL; prints it once."

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-seconds",
            type=int,
            default=DEFAULT_GRACE_SECONDS,
            help="How long the previous secret keeps signing too (default %(default)s).",
        )

    def handle(self, *args, grace_seconds: int, **options):
        grace = max(0, min(grace_seconds, MAX_GRACE_SECONDS))
        secret = ops_signing_secret_rotate(grace_seconds=grace, created_by="manage.py")
        self.stdout.write(secret)
