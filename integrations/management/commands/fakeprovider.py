from django.core.management.base import BaseCommand

from integrations.fakeprovider import FakeProviderServer


class Command(BaseCommand):
    help = (
        "Serve fake Trello, Miro, Shopify, GA4, Selenium Grid and HTTP endpoints under "
        "/<provider>/, with /_faults, /_limits, /_journal and /_reset control endpoints."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")

    def handle(self, *args, port: int, host: str, **options):
        server = FakeProviderServer(host, port)
        self.stdout.write(f"Fake provider server on {server.url} (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
