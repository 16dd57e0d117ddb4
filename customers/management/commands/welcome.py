from pathlib import Path

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print where the running demo lives and how to call it (used by `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--key-file", required=True)
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, key_file: str, base_url: str, **options):
        raw_key = Path(key_file).read_text().strip()
        self.stdout.write(
            f"""
Switchyard is starting (web, worker, dispatcher, fake provider server).

  Admin      {base_url}/admin/            login: admin / admin
  API docs   {base_url}/api/docs/
  API key    {raw_key}

Try it:
  curl -H "Authorization: Bearer {raw_key}" {base_url}/api/v1/customers/

Stop with Ctrl-C.
"""
        )
