from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from integrations import providers, registry  # noqa: F401  (imports register providers)

        registry.freeze()
        from integrations import checks  # noqa: F401  (registers the system checks)
        from integrations.deliveries import metrics  # noqa: F401  (registers its collector)
