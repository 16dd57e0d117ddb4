from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self):
        from django.db.models.signals import post_delete

        from customers import lifecycle
        from integrations import dashboard, dispatcher, outbox, registry
        from integrations.providers.standard_webhooks import StandardWebhooksProvider
        from webhooks import (
            admin_dashboard,
            metrics,  # noqa: F401  (registers its collector)
            services,
        )
        from webhooks.models import Subscription
        from webhooks.outbound import SEND
        from webhooks.sources import miro_poll
        from webhooks.sources.transports import AmazonSqsTransport, AmqpTransport

        post_delete.connect(
            services.subscription_deleted,
            sender=Subscription,
            dispatch_uid="webhooks.subscription_deleted",
        )
        registry.operation_add(StandardWebhooksProvider.key, SEND)
        registry.register(AmazonSqsTransport)
        registry.register(AmqpTransport)
        dispatcher.step_add("relay_due_inbound_events", 0, services.inbound_events_relay_due)
        dispatcher.step_add(
            "recover_expired_inbound_leases",
            outbox.recovery_seconds,
            services.inbound_events_recover_leases,
        )
        for rule in (services.FINISHED_INBOUND_EVENTS, services.DEAD_INBOUND_EVENTS):
            lifecycle.retention_rule_add(rule, step_add=dispatcher.step_add)
        lifecycle.eraser_add("webhooks", services.customer_webhooks_erase)
        dashboard.section_add("inbound", admin_dashboard.inbound_section)
        dashboard.counter_add(
            admin_dashboard.REJECTED_SIGNATURES, admin_dashboard.rejected_signatures_total
        )
        dispatcher.step_add("poll_miro_boards", 0, miro_poll.miro_polls_start_due)
