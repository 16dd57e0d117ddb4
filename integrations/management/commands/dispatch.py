from django.conf import settings
from django.core.management.base import BaseCommand

from config.metrics_recorded import metrics_serve
from integrations.dispatcher import Dispatcher, default_steps


class Command(BaseCommand):
    help = "Run the dispatcher: outbox relay, lease recovery and periodic upkeep. Stops on SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.SWITCHYARD_DISPATCH_INTERVAL_SECONDS,
            help="Seconds between passes over the steps (default %(default)s).",
        )
        parser.add_argument("--once", action="store_true", help="Run every step once and exit.")

    def handle(self, *args, interval: float, once: bool, **options):
        dispatcher = Dispatcher(default_steps(), interval_seconds=interval)
        if once:
            dispatcher.run_due_steps()
            return
        if settings.SWITCHYARD_METRICS_PORT:
            metrics_serve(settings.SWITCHYARD_METRICS_PORT, settings.SWITCHYARD_METRICS_BIND)
        dispatcher.install_signal_handlers()
        dispatcher.run_forever()
