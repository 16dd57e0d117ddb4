from django.core.management.base import BaseCommand

from config.shutdown import StopRequest
from devtools.fakeprovider import FakeProviderServer


class Command(BaseCommand):
    help = (
        "Serve fake Trello, Miro, Shopify, GA4, Selenium Grid and HTTP endpoints under "
        "/<provider>/, with /_faults, /_limits, /_journal and /_reset control endpoints. "
        "Stops on SIGTERM or SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")

    def handle(self, *args, port: int, host: str, **options):
        stop = StopRequest()
        stop.install()
        # Served from a thread: shutdown() waits for serve_forever() to return, so it cannot be
        # called from the thread that runs it.
        server = FakeProviderServer.start(host, port)
        self.stdout.write(f"Fake provider server on {server.url} (Ctrl-C to stop)")
        stop.wait()
        server.stop()
