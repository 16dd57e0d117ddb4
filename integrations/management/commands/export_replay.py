import json
import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.deliveries.replays import delivery_replay_export
from integrations.models import Delivery

DEFAULT_DIR = Path(settings.BASE_DIR) / "tests" / "replays"


class Command(BaseCommand):
    help = (
        "Write a logged delivery, its attempts and the provider's answers (secrets stripped) to "
        "tests/replays/<name>.json, where the replay test runs it through the engine again."
    )

    def add_arguments(self, parser):
        parser.add_argument("delivery_id", type=int, help="Id of the delivery to export.")
        parser.add_argument("--name", help="File name (default: delivery-<id>).")
        parser.add_argument("--description", default="", help="What bug this replays.")
        parser.add_argument("--output-dir", default=str(DEFAULT_DIR))

    def handle(self, *args, delivery_id, name, description, output_dir, **options):
        delivery = (
            Delivery.objects.select_related("customer__region", "integration")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            raise CommandError(f"No delivery with id {delivery_id}.")
        if not delivery.attempt_log.exists():
            raise CommandError(f"Delivery {delivery_id} has no attempts to replay yet.")
        name = name or f"delivery-{delivery_id}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise CommandError("--name may use letters, digits, '.', '_' and '-' only.")
        replay = delivery_replay_export(delivery=delivery, name=name, description=description)
        path = Path(output_dir) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(replay, indent=2, sort_keys=True) + "\n")
        self.stdout.write(str(path))
