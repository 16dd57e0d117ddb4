from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self):
        from webhooks import metrics  # noqa: F401  (registers its collector)
