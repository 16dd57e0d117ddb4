import pytest

from integrations.services import integration_create

pytestmark = pytest.mark.django_db


def test_providers_catalogue_is_generated_from_the_registry(api):
    body = api.get("/api/v1/providers/").json()
    providers = {p["key"]: p for p in body["providers"]}
    assert set(providers) == {
        "amazon_sqs",  # broker credentials of inbound endpoints' queues (webhooks.sources)
        "amqp",
        "ga4",
        "http",
        "miro",
        "selenium",
        "shopify",
        "standard_webhooks",
        "stripe",
        "trello",
    }
    trello = providers["trello"]
    assert trello["credential_fields"]["api"][0] == {
        "name": "api_key",
        "required": True,
        "secret": True,
        "help_text": "The Power-Up API key (32 hex characters).",
    }
    for key in ("trello", "shopify", "stripe", "standard_webhooks"):
        assert [f["name"] for f in providers[key]["credential_fields"]["webhook_signing"]] == [
            "secret"
        ]
    move = next(op for op in trello["operations"] if op["name"] == "move_card")
    assert move["action"] == "trello.move_card"
    assert move["input"]["list_id"]["required"] is True
    assert move["input"]["list_id"]["pattern"] == "^[0-9a-fA-F]{24}$"
    assert trello["capabilities"] == [{"name": "workflow.proceed", "operation": "move_card"}]
    assert providers["ga4"]["regional_base_urls"] == {"eu": "https://region1.google-analytics.com"}
    events = next(op for op in providers["ga4"]["operations"])["input"]["events"]
    assert (events["type"], events["maxItems"]) == ("array", 25)
    [proceed] = body["capabilities"]
    assert proceed["name"] == "workflow.proceed"
    assert proceed["providers"] == ["miro", "trello"]
    assert set(proceed["input"]) == {"item", "from", "to", "options"}


def test_providers_needs_an_api_key(anonymous_api):
    assert anonymous_api.get("/api/v1/providers/").status_code == 401


def test_create_list_and_get_integration(api, acme):
    config = {"base_url": "http://127.0.0.1:9100/trello", "stages": {"review": "a", "done": "b"}}
    response = api.post(
        "/api/v1/integrations/",
        {"customer": "acme", "provider": "trello", "config": config},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["customer"], created["provider"], created["config"], created["active"]) == (
        "acme",
        "trello",
        config,
        True,
    )
    assert api.get("/api/v1/integrations/").json()["results"] == [created]
    assert api.get(f"/api/v1/integrations/{created['id']}/").json() == created


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"customer": "acme", "provider": "nope"}, "provider"),
        ({"customer": "nobody", "provider": "trello"}, "customer"),
        ({"customer": "acme", "provider": "trello", "config": {"stages": ["review"]}}, "config"),
        (
            {"customer": "acme", "provider": "trello", "config": {"stages": {"a": 1, "b": {}}}},
            "config",
        ),
        ({"customer": "acme", "provider": "trello", "config": {"colour": "red"}}, "config"),
        ({"customer": "acme", "provider": "trello", "config": {"base_url": "not a url"}}, "config"),
        ({"customer": "acme", "provider": "http", "config": {"base_url": "ftp://host/"}}, "config"),
        ({"customer": "acme", "provider": "http", "config": {"base_url": "http://h/?q"}}, "config"),
        ({"customer": "acme", "provider": "shopify", "config": {}}, "config"),
        ({"customer": "acme", "provider": "trello", "config": "x"}, "config"),
    ],
)
def test_invalid_integration_is_400_problem_naming_the_field(api, acme, payload, field):
    response = api.post("/api/v1/integrations/", payload, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]


def test_one_active_integration_per_customer_and_provider(api, acme):
    payload = {"customer": "acme", "provider": "trello"}
    assert api.post("/api/v1/integrations/", payload, format="json").status_code == 201
    second = api.post("/api/v1/integrations/", payload, format="json")
    assert second.status_code == 400 and "already has an active" in second.json()["detail"]
    inactive = api.post("/api/v1/integrations/", {**payload, "active": False}, format="json")
    assert inactive.status_code == 201


def test_restricted_key_sees_only_its_customers(acme_api, acme, globex):
    mine = integration_create(customer=acme, provider_key="trello")
    theirs = integration_create(customer=globex, provider_key="trello")
    ids = [i["id"] for i in acme_api.get("/api/v1/integrations/").json()["results"]]
    assert ids == [mine.pk]
    assert acme_api.get(f"/api/v1/integrations/{theirs.pk}/").status_code == 404
    assert acme_api.post(f"/api/v1/integrations/{theirs.pk}/check/").status_code == 404
    created = acme_api.post(
        "/api/v1/integrations/", {"customer": "globex", "provider": "miro"}, format="json"
    )
    assert created.status_code == 400 and "customer" in created.json()["errors"]


# -- check -----------------------------------------------------------------------------------------


def test_check_succeeds_against_the_fake_server(api, acme, fake_provider, api_credential):
    api_credential(acme, "trello", {"api_key": "k" * 32, "token": "t" * 64})
    integration = integration_create(
        customer=acme, provider_key="trello", config={"base_url": f"{fake_provider.url}/trello"}
    )
    body = api.post(f"/api/v1/integrations/{integration.pk}/check/").json()
    assert (body["ok"], body["outcome"], body["status"]) == (True, "success", 200)
    assert body["result"] == {"member_id": "5abbe4b7ddc1b351ef961400", "username": "fakemember"}


@pytest.mark.parametrize(
    ("fault", "outcome"), [({"status": 401}, "auth_failed"), ({"status": 429}, "rate_limited")]
)
def test_check_reports_classified_errors(api, acme, fake_provider, api_credential, fault, outcome):
    api_credential(acme, "trello", {"api_key": "k" * 32, "token": "t" * 64})
    integration = integration_create(
        customer=acme, provider_key="trello", config={"base_url": f"{fake_provider.url}/trello"}
    )
    fake_provider.fault(path_prefix="/trello/", **fault)
    response = api.post(f"/api/v1/integrations/{integration.pk}/check/")
    body = response.json()
    assert response.status_code == 200
    assert (body["ok"], body["outcome"], body["status"]) == (False, outcome, fault["status"])
    assert "k" * 32 not in response.content.decode()


def test_check_without_credential_is_409_problem(api, acme):
    integration = integration_create(customer=acme, provider_key="trello")
    response = api.post(f"/api/v1/integrations/{integration.pk}/check/")
    assert response.status_code == 409
    assert (
        "No api credential for provider 'trello' serves customer 'acme'"
        in response.json()["detail"]
    )


def test_check_open_grid_needs_no_credential(api, acme, fake_provider):
    integration = integration_create(
        customer=acme, provider_key="selenium", config={"base_url": f"{fake_provider.url}/selenium"}
    )
    assert api.post(f"/api/v1/integrations/{integration.pk}/check/").json()["ok"] is True


# -- bad input is a 400 problem naming the field, before anything is queued or sent -------


def _validate(api, action, input, customer="acme"):
    return api.post(
        "/api/v1/actions/validate/",
        {"customer": customer, "action": action, "input": input},
        format="json",
    )


@pytest.fixture
def trello_integration(acme):
    return integration_create(
        customer=acme,
        provider_key="trello",
        config={
            "stages": {"review": "5abbe4b7ddc1b351ef961401", "done": "5abbe4b7ddc1b351ef961402"}
        },
    )


def test_valid_action(api, trello_integration):
    body = _validate(api, "workflow.proceed", {"item": "abc123", "to": "done"}).json()
    assert body == {
        "valid": True,
        "provider": "trello",
        "operation": "move_card",
        "capability": "workflow.proceed",
        "integration": trello_integration.pk,
    }


@pytest.mark.parametrize(
    ("action", "input", "path"),
    [
        (
            "ga4.track",
            {"client_id": "1", "events": [{"name": "_bad"}]},
            ["input", "events", "0", "name"],
        ),
        ("ga4.track", {"client_id": "1", "events": [{"name": "ok"}] * 26}, ["input", "events"]),
        ("workflow.proceed", {"item": "abc123", "from": "review"}, ["input", "to"]),
        ("workflow.proceed", {"item": "abc123", "to": "limbo"}, ["input", "to"]),
        ("nope.track", {}, ["action"]),
        ("trello.teleport", {}, ["action"]),
        ("teleport", {}, ["action"]),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(
    api, trello_integration, fake_provider, action, input, path
):
    response = _validate(api, action, input)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    for key in path:
        errors = errors[key]
    assert errors
    assert fake_provider.journal() == []


def test_restricted_key_cannot_validate_for_other_customers(acme_api, globex):
    response = _validate(acme_api, "trello.move_card", {}, customer="globex")
    assert response.status_code == 400 and "customer" in response.json()["errors"]


def test_one_check_at_a_time_per_key(api, api_key, acme, fake_provider, api_credential):
    from django.core.cache import cache

    integration = integration_create(
        customer=acme, provider_key="selenium", config={"base_url": f"{fake_provider.url}/selenium"}
    )
    lock = f"switchyard:integration-check:{api_key[0].pk}"
    assert cache.add(lock, 1)  # as a check of this key still running would hold it
    busy = api.post(f"/api/v1/integrations/{integration.pk}/check/")
    assert busy.status_code == 429
    assert busy["Content-Type"] == "application/problem+json"
    assert "already running" in busy.json()["detail"]
    cache.delete(lock)
    assert api.post(f"/api/v1/integrations/{integration.pk}/check/").json()["ok"] is True
    # Released after success and after a refusal alike.
    assert cache.add(lock, 1)
    cache.delete(lock)
    trello = integration_create(customer=acme, provider_key="trello")
    assert api.post(f"/api/v1/integrations/{trello.pk}/check/").status_code == 409
    assert api.post(f"/api/v1/integrations/{integration.pk}/check/").status_code == 200


def test_the_check_runs_while_the_shared_cache_is_down(api, acme, fake_provider, monkeypatch):
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "delete", down)
    integration = integration_create(
        customer=acme, provider_key="selenium", config={"base_url": f"{fake_provider.url}/selenium"}
    )
    assert api.post(f"/api/v1/integrations/{integration.pk}/check/").json()["ok"] is True
