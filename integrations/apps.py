from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from customers import lifecycle as data_lifecycle
        from integrations import checks, dispatcher, heartbeats, lifecycle, outbox  # noqa: F401
        from integrations.dashboard import rollups
        from integrations.deliveries import metrics  # noqa: F401  (registers its collector)
        from integrations.deliveries import services as deliveries
        from integrations.ops import conditions as ops_conditions
        from integrations.ops import services as ops
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
        # Operational notifications go out within a second or two of their event.
        dispatcher.step_add("send_ops_notifications", 1, ops.ops_notifications_send)
        dispatcher.step_add(
            "check_ops_conditions", ops.ops_check_seconds, ops_conditions.ops_conditions_check
        )
        # The admin dashboard's aggregates, read instead of the attempt log.
        dispatcher.step_add(
            "rollup_dashboard", rollups.STEP_EVERY_SECONDS, rollups.dashboard_rollup
        )
        for rule in (
            lifecycle.FINISHED_DELIVERIES,
            lifecycle.DEAD_DELIVERIES,
            rollups.DELIVERY_ROLLUPS,
            rollups.COUNTER_ROLLUPS,
        ):
            data_lifecycle.retention_rule_add(rule, step_add=dispatcher.step_add)
        data_lifecycle.eraser_add("integrations", lifecycle.customer_deliveries_erase)
