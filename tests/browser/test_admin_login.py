import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_login_and_customers_list(page, admin_login, acme, globex):
    admin_login()
    page.click("#content-main a[href$='/admin/customers/customer/']")
    page.wait_for_selector("#result_list")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert "Acme GmbH" in page.inner_text("#result_list")
    page.fill("#searchbar", "globex")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("text=1 result")
    assert page.locator("#result_list tbody tr").count() == 1


def test_wrong_password_is_refused(page, django_user_model):
    django_user_model.objects.create_superuser("ops", "ops@example.com", "right-Passw0rd")
    page.goto(f"{page.base_url}/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "wrong")
    page.click("input[type=submit]")
    assert "Please enter the correct username and password" in page.inner_text(".errornote")
