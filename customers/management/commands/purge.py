"""Delete what the retention settings (SWITCHYARD_RETAIN_*_DAYS) no longer keep, now, in the
same short batches as the dispatcher's purge steps; ``--dry-run`` only counts."""

from django.core.management.base import BaseCommand

from customers.lifecycle import retention_plan, retention_purge, retention_rules


class Command(BaseCommand):
    help = (
        "Purge rows past their retention (SWITCHYARD_RETAIN_*_DAYS) in small batches and print "
        "how many rows go per table; --dry-run counts without deleting."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )

    def handle(self, *args, dry_run, **options):
        totals: dict[str, int] = {}
        for rule in retention_rules():
            counts = retention_plan(rule) if dry_run else retention_purge(rule)
            if not counts and options["verbosity"] > 1:
                self.stdout.write(f"{rule.name}: kept ({rule.setting})")
            for table, count in counts.items():
                totals[table] = totals.get(table, 0) + count
        verb = "would delete" if dry_run else "deleted"
        for table in sorted(totals):
            self.stdout.write(f"{table}: {verb} {totals[table]}")
        self.stdout.write(f"total: {verb} {sum(totals.values())} rows")
