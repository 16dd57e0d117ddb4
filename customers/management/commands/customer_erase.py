"""Erase a departing customer's data (customers/lifecycle/erasure.py); safe to run again."""

from django.core.management.base import BaseCommand, CommandError

from customers.lifecycle import CustomerNotFound, customer_erase


class Command(BaseCommand):
    help = (
        "Erase a customer's data: credentials revoked and their ciphertext destroyed, payloads "
        "and bodies purged, deliveries and events reduced to ids, times, statuses and actions, "
        "API keys revoked; audited. Running it again finishes an interrupted erasure."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The customer's slug.")

    def handle(self, *args, slug, **options):
        try:
            report = customer_erase(slug=slug, actor="command")
        except CustomerNotFound as exc:
            raise CommandError(str(exc)) from None
        for table in sorted(report.counts):
            self.stdout.write(f"{table}: erased {report.counts[table]}")
        for table in sorted(report.busy):
            self.stdout.write(
                self.style.WARNING(
                    f"{table}: {report.busy[table]} in flight, left to their worker; run "
                    "this command again once they have finished"
                )
            )
        self.stdout.write(self.style.SUCCESS(f"Customer {slug} erased."))
