import json
from pathlib import Path

from django.core.management.base import BaseCommand

from devtools.demo import DEMO_BOARD_POLL

DEMO_PROCEED = {
    "customer": "acme",
    "action": "workflow.proceed",
    "input": {"item": "5abbe4b7ddc1b351ef961414", "to": "done"},
}


class Command(BaseCommand):
    help = "Print where the running demo lives and how to call it (used by `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--key-file", required=True)
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--fake-provider-url", default="http://127.0.0.1:9100")

    def handle(self, *args, key_file: str, base_url: str, fake_provider_url: str, **options):
        raw_key = Path(key_file).read_text().strip()
        board = DEMO_BOARD_POLL[1]["board_id"]
        self.stdout.write(
            f"""
Switchyard is starting (web, worker, dispatcher, fake provider server).

  Admin      {base_url}/admin/            login: admin / admin
  API docs   {base_url}/api/docs/
  API key    {raw_key}

Try it:
  curl -H "Authorization: Bearer {raw_key}" {base_url}/api/v1/customers/

Move acme's card to the "done" stage of its workflow (served by Trello at the fake provider):
  curl -X POST {base_url}/api/v1/deliveries/ \\
    -H "Authorization: Bearer {raw_key}" -H "Content-Type: application/json" \\
    -H "Idempotency-Key: demo-$(date +%s)" \\
    -d '{json.dumps(DEMO_PROCEED)}'
  then open {base_url}/admin/integrations/delivery/ or curl {fake_provider_url}/_journal

A change on globex's Miro board arriving as an event (the board is polled every 3 s; Miro has
no webhooks): add a sticky note on the fake provider's board,
  curl -X POST {fake_provider_url}/miro/v2/boards/{board}/sticky_notes \\
    -H "Authorization: Bearer demo" -H "Content-Type: application/json" \\
    -d '{{"data": {{"content": "Hello from the demo"}}}}'
  then a few seconds later:
  curl -H "Authorization: Bearer {raw_key}" \\
    "{base_url}/api/v1/inbound-events/?type=miro.item.created"
  (move it with PATCH …/items/<id>, remove it with DELETE …/items/<id>: miro.item.updated, .deleted)

Stop with Ctrl-C.
"""
        )
