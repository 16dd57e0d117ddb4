import hashlib
import re

import pytest

from customers.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(admin_client):
    return admin_client


def test_customer_changelist_with_filters_and_search(staff, acme, globex):
    response = staff.get(f"/admin/customers/customer/?region__id__exact={acme.region_id}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "acme" in html and "Acme GmbH" in html
    assert "Globex" not in html
    assert "Globex" in staff.get("/admin/customers/customer/?q=glob").content.decode()


def test_region_changelist(staff, acme):
    assert staff.get("/admin/customers/region/").status_code == 200


def test_adding_an_api_key_shows_it_once_and_stores_only_its_hash(staff, acme):
    response = staff.post(
        "/admin/customers/apikey/add/", {"name": "crm", "scope": "app", "customers": [acme.pk]}
    )
    assert response.status_code == 200
    raw = re.search(r'id="raw-api-key"[^>]*>(sy_[^<]+)<', response.content.decode()).group(1)
    api_key = ApiKey.objects.get(name="crm")
    assert api_key.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert list(api_key.customers.all()) == [acme]
    change_page = staff.get(f"/admin/customers/apikey/{api_key.pk}/change/").content.decode()
    assert raw not in change_page
    assert f"sy_{api_key.prefix}_" in change_page
    assert raw not in staff.get("/admin/customers/apikey/").content.decode()


def test_revoke_action(staff, api_key):
    row, _ = api_key
    staff.post(
        "/admin/customers/apikey/",
        {"action": "revoke_selected", "_selected_action": [row.pk]},
    )
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert row.audit_entries.filter(action="revoke", actor="user:admin").exists()


def test_admin_scope_with_customers_is_refused_and_changes_are_audited(staff, acme, globex):
    refused = staff.post(
        "/admin/customers/apikey/add/", {"name": "ops", "scope": "admin", "customers": [acme.pk]}
    )
    assert refused.status_code == 200
    assert "cannot be limited to customers" in refused.content.decode()
    assert not ApiKey.objects.filter(name="ops").exists()

    staff.post(
        "/admin/customers/apikey/add/", {"name": "crm", "scope": "app", "customers": [acme.pk]}
    )
    key = ApiKey.objects.get(name="crm")
    assert key.audit_entries.get().action == "create"
    staff.post(
        f"/admin/customers/apikey/{key.pk}/change/",
        {
            "name": "crm",
            "scope": "app",
            "customers": [acme.pk, globex.pk],
            "expires_at_0": "",
            "expires_at_1": "",
            "audit_entries-TOTAL_FORMS": "0",
            "audit_entries-INITIAL_FORMS": "1",
            "audit_entries-MIN_NUM_FORMS": "0",
            "audit_entries-MAX_NUM_FORMS": "1000",
        },
    )
    change = key.audit_entries.get(action="change")
    assert change.actor == "user:admin"
    assert change.changes == {"customers": [["acme"], ["acme", "globex"]]}
    page = staff.get(f"/admin/customers/apikey/{key.pk}/change/").content.decode()
    assert "Audit log" in page and "user:admin" in page
