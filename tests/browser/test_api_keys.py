"""The API keys page in a real browser: create a scoped key, see it once, change its scope."""

import pytest

from customers.models import ApiKey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_an_app_key_then_make_it_admin(page, admin_login, acme):
    admin_login()
    page.goto(f"{page.base_url}/admin/customers/apikey/add/")
    page.fill("#id_name", "crm")
    page.select_option("#id_scope", "admin")
    page.select_option("#id_customers_from", label="acme")
    page.click("#id_customers_add")
    page.click("input[name=_save]")
    # An admin key limited to a customer is refused with the reason, and nothing is created.
    assert "cannot be limited to customers" in page.inner_text(".errorlist")
    assert not ApiKey.objects.exists()

    page.select_option("#id_scope", "app")
    page.click("input[name=_save]")
    raw = page.inner_text("#raw-api-key")
    assert raw.startswith("sy_")
    page.click("text=Continue to the key")
    page.wait_for_selector("#id_scope")
    assert page.input_value("#id_scope") == "app"

    page.select_option("#id_customers_to", label="acme")
    page.click("#id_customers_remove")
    page.select_option("#id_scope", "admin")
    page.click("input[name=_save]")
    page.wait_for_selector("#result_list")
    assert "Admin" in page.inner_text("#result_list")
    key = ApiKey.objects.get(name="crm")
    assert key.scope == "admin" and not key.customers.exists()
    change = key.audit_entries.get(action="change")
    assert change.actor == "user:admin"
    assert change.changes["scope"] == ["app", "admin"]
    assert raw not in page.content()
