"""The integration form: the provider as a choice, config as JSON checked against the
provider's settings with an example in the help text."""

import pytest

from integrations.models import Integration

pytestmark = pytest.mark.django_db


def _add(admin_client, acme, config):
    data = {"customer": acme.pk, "provider_key": "trello", "config": config, "active": "on"}
    return admin_client.post("/admin/integrations/integration/add/", data)


def test_help_text_names_each_providers_settings_with_an_example(admin_client):
    html = admin_client.get("/admin/integrations/integration/add/").content.decode()
    assert "max_attempts" in html and "<b>trello</b>:" in html
    assert '<select name="provider_key"' in html


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ("{not json", "Enter a valid JSON."),
        ("[1, 2]", "Expected a JSON object"),
        ('{"retry": {"max_attempts": "many"}}', "max_attempts"),
    ],
)
def test_wrong_config_is_refused_with_a_clear_error(admin_client, acme, config, error):
    page = _add(admin_client, acme, config)
    assert page.status_code == 200 and error in page.content.decode()
    assert not Integration.objects.exists()


def test_empty_config_is_an_empty_object(admin_client, acme):
    assert _add(admin_client, acme, "").status_code == 302
    assert Integration.objects.get().config == {}
