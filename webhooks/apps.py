from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self):
        from django.db.models.signals import post_delete

        from webhooks import metrics  # noqa: F401  (registers its collector)
        from webhooks.models import Subscription
        from webhooks.services import subscription_deleted

        post_delete.connect(
            subscription_deleted, sender=Subscription, dispatch_uid="webhooks.subscription_deleted"
        )
