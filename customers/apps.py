from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"

    def ready(self):
        from customers import lifecycle, signals  # noqa: F401  (signals: the receivers)
        from integrations import dispatcher

        lifecycle.retention_rule_add(lifecycle.API_KEY_AUDIT, step_add=dispatcher.step_add)
