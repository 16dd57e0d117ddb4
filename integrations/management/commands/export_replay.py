import json
import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.deliveries.replays import delivery_replay_export
from integrations.models import Delivery
from webhooks.models import InboundEvent
from webhooks.replays import inbound_event_replay_export

# One directory per kind of replay, each run by its own test: a delivery replay in
# tests/replays/deliveries/ (tests/integrations/deliveries/test_replays.py), an inbound event in
# tests/replays/inbound/ (tests/webhooks/test_replays.py).
KIND_DIRS = {"delivery": "deliveries", "event": "inbound"}


def replay_dir(kind: str) -> Path:
    return Path(settings.BASE_DIR) / "tests" / "replays" / KIND_DIRS[kind]


class Command(BaseCommand):
    help = (
        "Write a logged delivery, its attempts and the provider's answers (secrets stripped) to "
        "tests/replays/deliveries/<name>.json, where the replay test runs it through the engine "
        "again. With --event, export an inbound webhook event (body and headers, secrets "
        "stripped) to tests/replays/inbound/<name>.json, which is fed through the receiver."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "delivery_id", type=int, nargs="?", help="Id of the delivery to export."
        )
        parser.add_argument("--event", type=int, help="Id of an inbound event to export instead.")
        parser.add_argument("--name", help="File name (default: delivery-<id>).")
        parser.add_argument("--description", default="", help="What bug this replays.")
        parser.add_argument(
            "--output-dir", help="Directory to write to (default: the kind's tests/replays/ one)."
        )

    def handle(self, *args, delivery_id, event, name, description, output_dir, **options):
        if (delivery_id is None) == (event is None):
            raise CommandError("Give a delivery id or --event <id>, not both.")
        if event is not None:
            replay, kind = self._event(event, name, description), "event"
        else:
            replay, kind = self._delivery(delivery_id, name, description), "delivery"
        path = Path(output_dir or replay_dir(kind)) / f"{replay['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(replay, indent=2, sort_keys=True) + "\n")
        self.stdout.write(str(path))

    def _event(self, event_id, name, description) -> dict:
        event = InboundEvent.objects.filter(pk=event_id).first()
        if event is None:
            raise CommandError(f"No inbound event with id {event_id}.")
        name = _checked(name or f"event-{event_id}")
        return inbound_event_replay_export(event=event, name=name, description=description)

    def _delivery(self, delivery_id, name, description) -> dict:
        delivery = (
            Delivery.objects.select_related("customer__region", "integration")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            raise CommandError(f"No delivery with id {delivery_id}.")
        if not delivery.attempt_log.exists():
            raise CommandError(f"Delivery {delivery_id} has no attempts to replay yet.")
        name = _checked(name or f"delivery-{delivery_id}")
        return delivery_replay_export(delivery=delivery, name=name, description=description)


def _checked(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise CommandError("--name may use letters, digits, '.', '_' and '-' only.")
    return name
