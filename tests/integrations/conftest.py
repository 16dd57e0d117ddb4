import sys
import types

import pytest
import requests

from integrations.actions import action_prepare, operation_execute
from integrations.services import integration_create

# Until tests.fakeprovider_fixture is listed in the root conftest's pytest_plugins.
from tests.fakeprovider_fixture import _fake_provider_server, fake_provider  # noqa: F401


@pytest.fixture
def execute(acme):
    """Prepare and send ``<provider>.<operation>`` for a customer, as the delivery engine will."""

    def run(action, input, *, credentials, config=None, customer=None, **kwargs):
        customer = customer or acme
        if config is not None:
            integration_create(customer=customer, provider_key=action.split(".")[0], config=config)
        call = action_prepare(customer=customer, action=action, input=input)
        with requests.Session() as session:
            return operation_execute(
                call=call, customer=customer, credentials=credentials, session=session, **kwargs
            )

    return run


class _CredentialNotConfigured(Exception):
    pass


@pytest.fixture
def credentials_contract(monkeypatch):
    """Stands in for credentials.services (credential_resolve / CredentialNotConfigured) while that
    app is built in parallel; the code under test relies only on that documented contract.
    Store fields as ``credentials_contract[(provider, customer_slug)] = {...}``."""
    stored = {}

    def credential_resolve(*, provider, customer, purpose="api"):
        if (provider, customer.slug) not in stored:
            raise _CredentialNotConfigured(
                f"No {purpose} credential for {provider} / {customer.slug}."
            )
        fields = stored[(provider, customer.slug)]
        return types.SimpleNamespace(credential_id=1, version_id=1, version=1, fields=fields)

    module = types.SimpleNamespace(
        credential_resolve=credential_resolve, CredentialNotConfigured=_CredentialNotConfigured
    )
    monkeypatch.setitem(sys.modules, "credentials.services", module)
    return stored
