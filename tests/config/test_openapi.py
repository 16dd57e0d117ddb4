import jsonschema
import pytest

from config.api.schema import IDEMPOTENCY_KEY_MAX_LENGTH
from integrations.deliveries.services.accept import IDEMPOTENCY_KEY_MAX_LENGTH as SERVICE_MAX
from integrations.providers.jsonschema import openapi_schema
from integrations.selectors import public_actions

pytestmark = pytest.mark.django_db


def test_schema_describes_the_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/customers/" in schema["paths"]
    assert "/api/v1/regions/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_docs_ui_loads_its_assets_locally(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html


def test_schema_generates_without_warnings(tmp_path):
    """Every endpoint is typed: drf-spectacular neither guesses nor warns."""
    from django.core.management import call_command

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )
    schema = (tmp_path / "schema.yml").read_text()
    for path in ("/api/v1/deliveries/", "/api/v1/credentials/", "/api/v1/webhook-endpoints/"):
        assert f"  {path}:" in schema


def _schema(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/json").json()


def test_action_operation_ids_read_as_verbs(client):
    ids = {
        operation["operationId"]
        for operations in _schema(client)["paths"].values()
        for operation in operations.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert {"credentials_rotate", "deliveries_retry", "dead_letters_retry"} <= ids
    assert {"subscriptions_rotate_secret", "inbound_events_replay"} <= ids
    assert not ids & {"credentials_rotate_create", "deliveries_retry_create"}


def test_requests_do_not_ask_for_read_only_fields(client):
    schemas = _schema(client)["components"]["schemas"]
    region_request = schemas["RegionRequest"]["properties"]
    assert "created_at" not in region_request and "created_at" in schemas["Region"]["properties"]
    # An integration's body is one variant per provider (its config): none asks for an id.
    for variant in schemas["IntegrationRequest"]["oneOf"]:
        assert "id" not in _component({"components": {"schemas": schemas}}, variant)["properties"]


def test_every_operation_documents_its_problems(client):
    schema = _schema(client)
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            refused = operation["responses"]["4XX"]["content"]
            assert "application/problem+json" in refused, f"{method} {path}"


def test_deliveries_create_documents_the_idempotency_key(client):
    parameters = _schema(client)["paths"]["/api/v1/deliveries/"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in parameters)


def _component(schema: dict, ref: dict) -> dict:
    return schema["components"]["schemas"][ref["$ref"].rpartition("/")[2]]


@pytest.mark.parametrize("component", ["DeliveryCreateRequest", "ActionValidateRequest"])
def test_an_actions_input_is_selected_by_action(client, component):
    schema = _schema(client)
    body = schema["components"]["schemas"][component]
    mapping = body["discriminator"]["mapping"]
    assert body["discriminator"]["propertyName"] == "action"
    assert [v["$ref"] for v in body["oneOf"]] == list(mapping.values())
    assert set(mapping) == {a.action for a in public_actions()}
    assert "workflow.proceed" in mapping and "trello.move_card" in mapping
    assert "standard_webhooks.send" not in mapping  # internal: the API refuses it
    move = _component(schema, {"$ref": mapping["trello.move_card"]})
    assert _component(schema, move["properties"]["action"])["enum"] == ["trello.move_card"]
    move_input = _component(schema, move["properties"]["input"])
    assert move_input["properties"]["list_id"]["pattern"] == "^[0-9a-fA-F]{24}$"
    assert set(move_input["required"]) == {"card_id", "list_id"}
    assert {"customer", "action", "input"} <= set(move["required"])


def _enums_inline(schema, schemas: dict):
    """``schema`` with the enum components drf-spectacular's enum hook cut out put back."""
    if isinstance(schema, list):
        return [_enums_inline(item, schemas) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    refs = [*schema.pop("allOf", []), *([{"$ref": schema.pop("$ref")}] if "$ref" in schema else [])]
    for ref in refs:
        schema = {**schemas[ref["$ref"].rpartition("/")[2]], **schema}
    return {key: _enums_inline(value, schemas) for key, value in schema.items()}


def test_the_catalogue_serves_the_schemas_the_document_does(client, api):
    schema = _schema(client)
    catalogue = api.get("/api/v1/providers/").json()
    served = {
        f"{p['key']}.{op['name']}": op["input_schema"]
        for p in catalogue["providers"]
        for op in p["operations"]
    } | {c["name"]: c["input_schema"] for c in catalogue["capabilities"]}
    assert set(served) == {a.action for a in public_actions()}
    for action in public_actions():
        schemas = schema["components"]["schemas"]
        published = _enums_inline(schemas[f"{action.component_stem}Input"], schemas)
        published.pop("description")
        json_schema = served[action.action]
        jsonschema.Draft202012Validator.check_schema(json_schema)
        rendered = openapi_schema(json_schema)
        rendered.pop("description", None)
        assert rendered == published, action.action


def test_miro_parent_id_is_nullable_in_both_dialects(client, api):
    providers = {p["key"]: p for p in api.get("/api/v1/providers/").json()["providers"]}
    [move] = providers["miro"]["operations"]
    assert move["input_schema"]["properties"]["parent_id"]["type"] == ["string", "null"]
    published = _schema(client)["components"]["schemas"]["MiroMoveItemInput"]
    assert published["properties"]["parent_id"]["nullable"] is True


def test_a_schema_valid_input_is_accepted_and_an_invalid_one_refused(api, acme):
    """The catalogue's schema and the API agree on one input each way."""
    providers = {p["key"]: p for p in api.get("/api/v1/providers/").json()["providers"]}
    move = next(op for op in providers["trello"]["operations"] if op["name"] == "move_card")
    validator = jsonschema.Draft202012Validator(move["input_schema"])
    good, bad = {"card_id": "card1", "list_id": "c" * 24}, {"card_id": "card1", "list_id": "x"}
    assert validator.is_valid(good) and not validator.is_valid(bad)
    for body, status in ((good, 202), (bad, 400)):
        answer = api.post(
            "/api/v1/deliveries/",
            {"customer": "acme", "action": "trello.move_card", "input": body},
            format="json",
        )
        assert answer.status_code == status, answer.content


def test_the_idempotency_key_is_described_as_the_service_checks_it(client):
    operation = _schema(client)["paths"]["/api/v1/deliveries/"]["post"]
    [header] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["schema"]["maxLength"] == IDEMPOTENCY_KEY_MAX_LENGTH == SERVICE_MAX
    assert "Idempotent-Replayed" in operation["responses"]["200"]["headers"]
    assert operation["requestBody"]["required"] is True


def test_statuses_and_reasons_are_enums(client):
    schema = _schema(client)
    parameters = {
        p["name"]: p["schema"] for p in schema["paths"]["/api/v1/deliveries/"]["get"]["parameters"]
    }
    assert parameters["status"] == {"$ref": "#/components/schemas/DeliveryStatusEnum"}
    assert parameters["dead_reason"] == {"$ref": "#/components/schemas/DeadReasonEnum"}
    schemas = schema["components"]["schemas"]
    assert "dead" in schemas["DeliveryStatusEnum"]["enum"]
    assert schemas["CheckResult"]["properties"]["outcome"] == {
        "$ref": "#/components/schemas/OutcomeEnum"
    }
    events = schema["paths"]["/api/v1/inbound-events/"]["get"]["parameters"]
    status = next(p for p in events if p["name"] == "status")
    assert status["schema"] == {"$ref": "#/components/schemas/InboundEventStatusEnum"}
