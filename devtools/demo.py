"""Demo integrations: acme's workflow on Trello, globex's on Miro, both at the fake provider server
(``manage.py fakeprovider``), so a new user's first ``check`` and ``workflow.proceed`` work; and
globex's Miro board polled every few seconds, so a change made on the fake board arrives as a
``miro.item.*`` event."""

import os

from django.db import transaction

from credentials.services import CredentialNotConfigured, credential_create, credential_resolve
from customers.models import Customer
from integrations import selectors, services
from integrations.models import Integration
from integrations.providers.types import CredentialPurpose
from webhooks.models import EndpointSource, WebhookEndpoint
from webhooks.services import endpoint_source_create

__all__ = ("DEMO_BOARD_POLL", "DEMO_INTEGRATIONS", "demo_integrations_seed")

# Fake values only: the fake server accepts any credential of the right shape.
DEMO_INTEGRATIONS = {
    "acme": (
        "trello",
        {
            "stages": {"review": "5abbe4b7ddc1b351ef9614a1", "done": "5abbe4b7ddc1b351ef9614a2"},
            "board_id": "5abbe4b7ddc1b351ef9614b0",
        },
        {"api_key": "d" * 32, "token": "e" * 64},
    ),
    "globex": (
        "miro",
        {
            "stages": {"review": "3458764517517800001", "done": "3458764517517800002"},
            "board_id": "uXjVDemoBoard=",
        },
        {"access_token": "demo-miro-access-token"},
    ),
}


# globex's board (its Miro integration's board_id), polled often so the demo answers quickly.
DEMO_BOARD_POLL = ("globex", {"board_id": "uXjVDemoBoard=", "interval_seconds": 3})


@transaction.atomic
def demo_integrations_seed(*, fake_url: str | None = None) -> list[Integration]:
    """Idempotent: an existing active integration or API credential is kept.
    Returns the integrations created now."""
    # Same variable the Procfile's fakeprovider process listens on.
    port = os.environ.get("FAKEPROVIDER_PORT", "9100")
    fake_url = fake_url or f"http://127.0.0.1:{port}"
    created = []
    for slug, (provider_key, config, fields) in DEMO_INTEGRATIONS.items():
        customer = Customer.objects.filter(slug=slug).first()
        if customer is None:
            continue
        if selectors.integration_active_get(customer=customer, provider_key=provider_key) is None:
            created.append(
                services.integration_create(
                    customer=customer,
                    provider_key=provider_key,
                    config={**config, "base_url": f"{fake_url.rstrip('/')}/{provider_key}"},
                )
            )
        _demo_credential_ensure(customer=customer, provider_key=provider_key, fields=fields)
    _demo_board_poll_ensure()
    return created


def _demo_board_poll_ensure() -> None:
    slug, config = DEMO_BOARD_POLL
    customer = Customer.objects.filter(slug=slug).first()
    if (
        customer is None
        or WebhookEndpoint.objects.filter(
            customer=customer, source=EndpointSource.MIRO_POLL
        ).exists()
    ):
        return
    endpoint_source_create(
        customer=customer, provider="miro", source=EndpointSource.MIRO_POLL, source_config=config
    )


def _demo_credential_ensure(*, customer: Customer, provider_key: str, fields: dict) -> None:
    try:
        credential_resolve(provider=provider_key, customer=customer, purpose=CredentialPurpose.API)
    except CredentialNotConfigured:
        credential_create(
            provider=provider_key,
            purpose=CredentialPurpose.API,
            customer=customer,
            label="demo (fake provider server)",
            fields=fields,
        )
