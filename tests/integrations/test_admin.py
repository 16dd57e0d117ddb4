import json

import pytest

from integrations.models import Integration
from integrations.services import integration_create

pytestmark = pytest.mark.django_db


def test_changelist_filters_and_search(admin_client, acme, globex):
    integration_create(customer=acme, provider_key="trello")
    integration_create(customer=globex, provider_key="miro")
    html = admin_client.get("/admin/integrations/integration/?provider_key=miro").content.decode()
    assert "globex" in html and "acme →" not in html
    assert "acme" in admin_client.get("/admin/integrations/integration/?q=acme").content.decode()


def test_add_form_offers_registered_providers_and_validates_config(admin_client, acme):
    page = admin_client.get("/admin/integrations/integration/add/").content.decode()
    assert '<option value="trello">' in page and '<option value="standard_webhooks">' in page
    response = admin_client.post(
        "/admin/integrations/integration/add/",
        {
            "customer": acme.pk,
            "provider_key": "trello",
            "config": '{"stages": ["x"]}',
            "active": "on",
        },
    )
    assert response.status_code == 200 and "stages" in response.content.decode()
    assert not Integration.objects.exists()


def test_check_connection_action(admin_client, acme, globex, fake_provider, api_credential):
    api_credential(acme, "trello", {"api_key": "k" * 32, "token": "t" * 64})
    good = integration_create(
        customer=acme, provider_key="trello", config={"base_url": f"{fake_provider.url}/trello"}
    )
    missing = integration_create(customer=globex, provider_key="trello")
    response = admin_client.post(
        "/admin/integrations/integration/",
        {"action": "check_connection", "_selected_action": [good.pk, missing.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "acme → trello: connection works" in html.lower()
    assert (
        "No api credential for provider &#x27;trello&#x27; serves customer &#x27;globex&#x27;"
        in html
    )
    assert [e["path"] for e in fake_provider.journal()] == ["/trello/1/members/me"]


def _edit(admin_client, integration, **fields):
    data = {
        "customer": integration.customer_id,
        "provider_key": integration.provider_key,
        "config": json.dumps(integration.config),
        "active": "on",
        **({"trusted": "on"} if integration.trusted else {}),
        **fields,
    }
    response = admin_client.post(f"/admin/integrations/integration/{integration.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    integration.refresh_from_db()


def test_a_new_base_url_in_the_admin_drops_the_trust(admin_client, acme):
    integration = integration_create(
        customer=acme,
        provider_key="ga4",
        config={"base_url": "https://ga4-proxy.example.com"},
        trusted=True,
    )
    _edit(admin_client, integration, config='{"base_url": "https://elsewhere.example.net"}')
    assert integration.config["base_url"] == "https://elsewhere.example.net"
    assert integration.trusted is False
    # Unrelated edits keep it; ticking it in the same change that moves the base_url sets it.
    _edit(admin_client, integration, trusted="on")
    assert integration.trusted is True
    _edit(admin_client, integration, active="")
    assert integration.trusted is True and integration.active is False
