from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self):
        from django.db.models.signals import post_delete

        from integrations import dispatcher, outbox, registry
        from integrations.providers.standard_webhooks import StandardWebhooksProvider
        from webhooks import (
            metrics,  # noqa: F401  (registers its collector)
            services,
        )
        from webhooks.models import Subscription
        from webhooks.outbound import SEND

        post_delete.connect(
            services.subscription_deleted,
            sender=Subscription,
            dispatch_uid="webhooks.subscription_deleted",
        )
        registry.operation_add(StandardWebhooksProvider.key, SEND)
        dispatcher.step_add("relay_due_inbound_events", 0, services.inbound_events_relay_due)
        dispatcher.step_add(
            "recover_expired_inbound_leases",
            outbox.recovery_seconds,
            services.inbound_events_recover_leases,
        )
