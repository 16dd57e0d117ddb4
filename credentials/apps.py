from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"

    def ready(self):
        from credentials import checks  # noqa: F401  (registers the system checks)
        from credentials.services import (
            CREDENTIAL_AUDIT,
            credential_versions_expire,
            customer_credentials_erase,
        )
        from customers import lifecycle
        from integrations import dispatcher

        dispatcher.step_add("expire_credential_versions", 30, credential_versions_expire)
        lifecycle.retention_rule_add(CREDENTIAL_AUDIT, step_add=dispatcher.step_add)
        lifecycle.eraser_add("credentials", customer_credentials_erase)
