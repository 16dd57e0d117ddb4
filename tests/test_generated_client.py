"""A client generated from the published schema by openapi-python-client (a widely used
generator) drives a running Switchyard: create a customer, a credential, an integration, a
delivery with an idempotency key, read its attempts and retry it as a dead letter (back to
pending with a fresh retry budget). The generator must print no warning: a skipped model or an
untyped body is a schema bug.

Generation is offline and takes about a second (no ruff post-hooks); the package is generated
into a temporary directory and imported from there."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from customers.services import api_key_create
from integrations.deliveries.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "switchyard_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
TRELLO_FIELDS = {"api_key": "a" * 32, "token": "b" * 64}


def _generate(directory: Path) -> str:
    """Generate the client into ``directory``; the generator's whole output."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    schema = directory / "schema.json"
    schema.write_bytes(OpenApiJsonRenderer().render(document, renderer_context={}))
    config = directory / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))
    command = [str(GENERATOR), "generate", "--path", str(schema), "--meta", "none"]
    command += ["--output-path", str(directory / PACKAGE), "--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("generated")
    output = _generate(directory)
    sys.path.insert(0, str(directory))
    try:
        yield output, importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(directory))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _call(operation: str):
    """``"customers.customers_create"`` → that generated operation module."""
    return importlib.import_module(f"{PACKAGE}.api.{operation}")


def test_the_generator_prints_no_warning(generated):
    output, _ = generated
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == [f"Generating {Path(lines[0].split()[-1])}"], output
    assert "warning" not in output.lower() and "skipping" not in output.lower()


def test_a_generated_client_drives_a_delivery_to_a_dead_letter_and_back(
    generated, live_server, region_eu
):
    _, package = generated
    models = importlib.import_module(f"{PACKAGE}.models")
    raw_key = api_key_create(name="generated-client", scope="admin")[1]
    client = package.AuthenticatedClient(
        base_url=live_server.url, token=raw_key, raise_on_unexpected_status=True
    )
    with client:
        customer = _call("customers.customers_create").sync(
            client=client, body=models.CustomerRequest(slug="initech", name="Initech", region="eu")
        )
        assert (customer.slug, customer.region) == ("initech", "eu")
        credential = _call("credentials.credentials_create").sync(
            client=client,
            body=models.TrelloApiCredentialRequest(
                provider=models.TrelloCredentialProvider.TRELLO,
                customer="initech",
                fields=models.TrelloApiCredentialFields(**TRELLO_FIELDS),
            ),
        )
        assert credential.current_version == 1
        # One attempt only: the provider is out of reach, so the first send dead-letters.
        config = {"base_url": "https://trello.example/1", "retry": {"max_attempts": 1}}
        integration = _call("integrations.integrations_create").sync(
            client=client,
            body=models.IntegrationTrelloRequest(
                customer="initech",
                provider=models.TrelloIntegrationProvider.TRELLO,
                config=models.TrelloIntegrationConfig.from_dict(config),
            ),
        )
        assert integration.provider == "trello"
        body = models.DeliveryCreateTrelloMoveCardRequest(
            customer="initech",
            action=models.TrelloMoveCardAction.TRELLO_MOVE_CARD,
            input_=models.TrelloMoveCardInput(card_id="card1", list_id="c" * 24),
        )
        create = _call("deliveries.deliveries_create")
        first = create.sync_detailed(client=client, body=body, idempotency_key="order-42")
        again = create.sync_detailed(client=client, body=body, idempotency_key="order-42")
        assert (first.status_code, again.status_code) == (202, 200)
        assert again.parsed.id == first.parsed.id and again.headers["Idempotent-Replayed"]
        assert Delivery.objects.count() == 1

        read = _call("deliveries.deliveries_retrieve")
        dead = read.sync(first.parsed.id, client=client)
        assert dead.status == models.DeliveryStatusEnum.DEAD
        assert [a.outcome for a in dead.attempts] == [models.OutcomeEnum.RETRYABLE]

        retried = _call("dead_letters.dead_letters_retry").sync_detailed(
            client=client, body=models.DeadLetterRetryIdsRequest(ids=[dead.id])
        )
        assert retried.status_code == 202 and retried.parsed.retried == 1
        after = read.sync(dead.id, client=client)
        # Back in the queue with a fresh retry budget; the dispatcher sends bulk retries.
        assert after.status == models.DeliveryStatusEnum.PENDING
        assert after.attempt_limit > after.attempt_count == 1
