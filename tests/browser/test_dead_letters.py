import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARD = "5abbe4b7ddc1b351ef961414"


def test_retry_a_dead_letter_from_the_admin(page, admin_login, acme, fake_provider):
    """The operator's path: Dead letters → select → Retry → confirm → the delivery succeeds."""
    from credentials.services import credential_create
    from integrations.deliveries.services import delivery_create
    from integrations.services import integration_create

    credential_create(
        provider="trello",
        purpose="api",
        customer=acme,
        fields={"api_key": "a" * 32, "token": "b" * 64},
    )
    integration_create(
        customer=acme,
        provider_key="trello",
        config={
            "base_url": f"{fake_provider.url}/trello",
            "stages": {"done": "5abbe4b7ddc1b351ef9614a2"},
            "retry": {"max_attempts": 1},
        },
    )
    # The provider is down for the first call; with one attempt allowed, it dead-letters.
    fake_provider.fault(path_prefix="/trello/", status=503, count=1)
    delivery, _ = delivery_create(
        api_key=None, customer="acme", action="workflow.proceed", input={"item": CARD, "to": "done"}
    )
    delivery.refresh_from_db()  # tests run queued tasks inline: the attempt already happened
    assert (delivery.status, delivery.dead_reason) == ("dead", "attempts_exhausted")

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
