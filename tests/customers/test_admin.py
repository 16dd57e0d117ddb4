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
    response = staff.post("/admin/customers/apikey/add/", {"name": "crm", "customers": [acme.pk]})
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
