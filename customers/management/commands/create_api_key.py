from django.core.management.base import BaseCommand, CommandError

from customers.models import Customer
from customers.services import api_key_create


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

    def handle(self, *args, name: str, customer: list[str], **options):
        customers = list(Customer.objects.filter(slug__in=customer))
        missing = sorted(set(customer) - {c.slug for c in customers})
        if missing:
            raise CommandError(f"Unknown customer(s): {', '.join(missing)}")
        _, raw_key = api_key_create(name=name, customers=customers)
        self.stdout.write(raw_key)
