from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from customers.models import ApiKey, Customer
from customers.services import ApiKeyScopeInvalid, api_key_create


class Command(BaseCommand):
    help = "Create an API key for an internal app and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Which internal app uses the key.")
        parser.add_argument(
            "--customer",
            action="append",
            default=[],
            metavar="SLUG",
            help="Restrict the key to this customer (repeatable). Omit for every customer.",
        )
        parser.add_argument(
            "--scope",
            choices=ApiKey.Scope.values,
            default=ApiKey.Scope.APP,
            help="app (default): act for its customers. admin: also configure regions, "
            "customers, shared credentials, trusted integrations and private destinations; "
            "cannot be combined with --customer.",
        )
        parser.add_argument(
            "--expires",
            metavar="ISO8601",
            help="When the key stops working, e.g. 2027-06-30T00:00:00Z.",
        )

    def handle(self, *args, name: str, customer: list[str], scope: str, expires, **options):
        customers = list(Customer.objects.filter(slug__in=customer))
        missing = sorted(set(customer) - {c.slug for c in customers})
        if missing:
            raise CommandError(f"Unknown customer(s): {', '.join(missing)}")
        expires_at = None
        if expires:
            expires_at = parse_datetime(expires)
            if expires_at is None or expires_at.tzinfo is None:
                raise CommandError("--expires takes an ISO 8601 time with a zone, e.g. …Z.")
        try:
            _, raw_key = api_key_create(
                name=name,
                customers=customers,
                scope=scope,
                expires_at=expires_at,
                actor="command:create_api_key",
            )
        except ApiKeyScopeInvalid as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(raw_key)
