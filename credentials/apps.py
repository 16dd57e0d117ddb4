from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"

    def ready(self):
        from credentials import checks  # noqa: F401  (registers the system checks)
