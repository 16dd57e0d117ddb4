import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from customers.models import ApiKey, Customer, Region
from customers.services import api_key_create
from devtools.demo import demo_integrations_seed

DEMO_KEY_NAME = "demo-app"


class Command(BaseCommand):
    help = "Load idempotent demo data: regions eu/us, two customers, an admin user and an API key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--key-file",
            default=None,
            help="Write the demo API key here (created once; later runs reuse it).",
        )

    @transaction.atomic
    def handle(self, *args, key_file: str | None, **options):
        eu, _ = Region.objects.get_or_create(code="eu", defaults={"name": "European Union"})
        us, _ = Region.objects.get_or_create(code="us", defaults={"name": "United States"})
        Customer.objects.get_or_create(
            slug="acme", defaults={"name": "Acme GmbH", "region": eu, "tier": "premium"}
        )
        Customer.objects.get_or_create(
            slug="globex", defaults={"name": "Globex Inc.", "region": us, "tier": "standard"}
        )
        demo_integrations_seed()
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser(
                "admin",
                "admin@example.com",
                os.environ.get("SWITCHYARD_DEMO_ADMIN_PASSWORD", "admin"),
            )
        if key_file and not (
            ApiKey.objects.filter(name=DEMO_KEY_NAME).exists() and os.path.exists(key_file)
        ):
            ApiKey.objects.filter(name=DEMO_KEY_NAME).delete()
            _, raw_key = api_key_create(
                name=DEMO_KEY_NAME, scope=ApiKey.Scope.ADMIN, actor="command:seed_demo"
            )
            with open(key_file, "w") as handle:
                handle.write(raw_key)
            os.chmod(key_file, 0o600)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
