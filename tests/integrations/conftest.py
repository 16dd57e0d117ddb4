import pytest

from credentials.services import credential_create
from integrations.deliveries.prepare import action_prepare
from integrations.deliveries.send import operation_execute
from integrations.egress import session_for
from integrations.providers.base import BaseProvider
from integrations.services import integration_create

# (connect, read) seconds: a provider's defaults, as a worker passes them.
TIMEOUT = BaseProvider().timeouts({}, deadline=float("inf"))


@pytest.fixture
def execute(acme):
    """Prepare and send ``<provider>.<operation>`` for a customer, as the delivery engine will."""

    def run(action, input, *, credentials, config=None, customer=None, **kwargs):
        customer = customer or acme
        if config is not None:
            integration_create(customer=customer, provider_key=action.split(".")[0], config=config)
        call = action_prepare(customer=customer, action=action, input=input)
        # Through egress, as the delivery engine sends.
        return operation_execute(
            call=call,
            customer=customer,
            credentials=credentials,
            session=session_for(call.provider_key),
            **{"timeout": TIMEOUT, **kwargs},
        )

    return run


@pytest.fixture
def api_credential():
    """Store an API credential for a customer the way operators do (encrypted, version 1)."""

    def create(customer, provider: str, fields: dict):
        return credential_create(provider=provider, purpose="api", customer=customer, fields=fields)

    return create
