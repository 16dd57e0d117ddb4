import pytest

from credentials.models import Credential
from credentials.services import credential_resolve
from devtools.demo import DEMO_INTEGRATIONS, demo_integrations_seed
from integrations.deliveries.prepare import action_prepare
from integrations.deliveries.send import operation_execute
from integrations.egress import session_for
from integrations.models import Integration
from integrations.services import integration_check

pytestmark = pytest.mark.django_db


def test_demo_integrations_point_at_the_fake_server_and_work(acme, globex, fake_provider):
    created = demo_integrations_seed(fake_url=fake_provider.url)
    assert {(i.customer.slug, i.provider_key) for i in created} == {
        ("acme", "trello"),
        ("globex", "miro"),
    }
    assert demo_integrations_seed(fake_url=fake_provider.url) == []  # idempotent
    for integration in Integration.objects.all():
        # The demo stored its credentials encrypted; the check resolves them like calls do.
        assert integration_check(integration=integration).ok
        fields = credential_resolve(
            provider=integration.provider_key, customer=integration.customer
        ).fields
        assert fields == DEMO_INTEGRATIONS[integration.customer.slug][2]
        call = action_prepare(
            customer=integration.customer,
            action="workflow.proceed",
            input={"item": "a1b2c3d4e5f6a1b2c3d4e5f6", "to": "done"},
        )
        outcome = operation_execute(
            call=call,
            customer=integration.customer,
            credentials=fields,
            session=session_for(integration.provider_key),
            timeout=(1, 5),  # (connect, read) seconds: the fake provider server is local
        )
        assert outcome.result == {"item": "a1b2c3d4e5f6a1b2c3d4e5f6", "stage": "done"}
    paths = [e["path"] for e in fake_provider.journal()]
    assert "/trello/1/cards/a1b2c3d4e5f6a1b2c3d4e5f6" in paths
    assert "/miro/v2/boards/uXjVDemoBoard=/items/a1b2c3d4e5f6a1b2c3d4e5f6" in paths


def test_seed_demo_gives_acme_trello_and_globex_miro():
    from django.core.management import call_command

    call_command("seed_demo")
    call_command("seed_demo")
    pairs = sorted(
        Integration.objects.values_list("customer__slug", "provider_key", "config__base_url")
    )
    assert pairs == [
        ("acme", "trello", "http://127.0.0.1:9100/trello"),
        ("globex", "miro", "http://127.0.0.1:9100/miro"),
    ]
    assert sorted(Credential.objects.values_list("customer__slug", "provider", "purpose")) == [
        ("acme", "trello", "api"),
        ("globex", "miro", "api"),
    ]
