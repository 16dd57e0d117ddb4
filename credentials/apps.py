from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"

    def ready(self):
        from credentials import checks  # noqa: F401  (registers the system checks)
        from credentials.services import credential_versions_expire
        from integrations import dispatcher

        dispatcher.step_add("expire_credential_versions", 30, credential_versions_expire)
