import pytest

from tests.browser.fixtures import trello_dead_letter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_retry_a_dead_letter_from_the_admin(page, admin_login, acme, fake_provider):
    """The operator's path: Dead letters → select → Retry → confirm → the delivery succeeds."""
    delivery = trello_dead_letter(acme, fake_provider)

    admin_login()
    page.goto(f"{page.base_url}/admin/integrations/deadletter/")
    assert "HTTP 503" in page.inner_text("#result_list")
    page.check(f"input[name=_selected_action][value='{delivery.pk}']")
    page.select_option("select[name=action]", "retry_selected")
    page.click("button[name=index]")
    page.wait_for_selector("text=Retry this delivery?")
    page.click('input[type=submit][value="Yes, I\'m sure"]')
    page.wait_for_selector("text=Retried 1 delivery.")

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"  # test settings run the queued task inline
    page.goto(f"{page.base_url}/admin/integrations/delivery/{delivery.pk}/change/")
    assert "Manual retry" in page.content()
    assert [r["status"] for r in fake_provider.journal("/trello/1/cards/")] == [503, 200]
