from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from integrations import checks, dispatcher, heartbeats, outbox  # noqa: F401  (checks)
        from integrations.deliveries import metrics  # noqa: F401  (registers its collector)
        from integrations.deliveries import services as deliveries
        from integrations.providers import (  # noqa: F401  (each registers its provider)
            ga4,
            http,
            miro,
            selenium,
            shopify,
            standard_webhooks,
            stripe,
            trello,
        )

        # Every pass: due work reaches a worker within one dispatch interval of its time.
        dispatcher.step_add("relay_due_deliveries", 0, deliveries.deliveries_relay_due)
        # Leases are short and renewed, so an expired one is a dead worker.
        dispatcher.step_add(
            "recover_expired_leases", outbox.recovery_seconds, deliveries.deliveries_recover_leases
        )
        dispatcher.step_add("heartbeat", dispatcher.heartbeat_seconds, dispatcher.workers_probe)
        dispatcher.step_add("purge_idempotency_keys", 600, deliveries.idempotency_keys_purge)
        dispatcher.step_add("purge_heartbeats", 3600, heartbeats.heartbeat_purge_stale)
