"""The operator console walked in Chromium: retry a dead letter from its page and see the actor
recorded, send a test event to a subscription, close a breaker; with no JS error and no failed
request (the favicon included). Rotating a credential: tests/credentials/test_browser.py."""

import pytest
from django.utils import timezone

from tests.browser.fixtures import trello_dead_letter
from tests.integrations.limits.fixtures import breaker_opened, fresh_limits  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARD = "5abbe4b7ddc1b351ef961414"


@pytest.fixture
def watched(page):
    """The page, failing the test on a JS error or an HTTP error answer (a 404 favicon too)."""
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"JS error: {exc}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    yield page
    assert problems == []


def test_retry_a_dead_letter_from_its_page_records_the_actor(
    watched, admin_login, acme, fake_provider
):
    page = watched
    delivery = trello_dead_letter(acme, fake_provider)
    admin_login(username="ops-anna")
    page.goto(f"{page.base_url}/admin/integrations/deadletter/")
    assert "503" in page.inner_text("#result_list")
    page.click(f"#result_list a[href$='/deadletter/{delivery.pk}/change/']")
    page.wait_for_selector("#sy-timeline")
    assert "Retries exhausted" in page.inner_text("#sy-summary")
    page.click("text=Copy as curl (secrets masked)")
    assert "b" * 64 not in page.inner_text(f"#curl-{delivery.attempt_log.get().pk}")
    page.click("a.sy-retry-link")
    page.wait_for_selector("text=Retry delivery")
    page.fill("#id_reason", "Trello is back")
    page.click('input[type=submit][value="Yes, I\'m sure"]')
    page.wait_for_selector(f"text=Retrying delivery #{delivery.pk}.")
    audit = page.inner_text("#sy-audit")
    assert "ops-anna" in audit and "Trello is back" in audit
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert "Manual retry" in page.inner_text("#sy-timeline")


def test_send_a_test_event_to_a_subscription(watched, admin_login):
    from tests.webhooks.conftest import Subscriber
    from webhooks.services import subscription_create

    page = watched
    subscriber = Subscriber()
    try:
        subscription, _ = subscription_create(
            url=subscriber.url, event_types=["*"], allow_private=True
        )
        admin_login()
        page.goto(f"{page.base_url}/admin/webhooks/subscription/{subscription.pk}/change/")
        page.wait_for_selector("#sy-health")
        page.click("a.sy-test-link")
        page.click("input[type=submit][value='Send test event']")
        page.wait_for_selector("text=Test event accepted (HTTP 200")
        assert len(subscriber.requests) == 1
        assert "Sent a test event" in page.inner_text("#sy-audit")
    finally:
        subscriber.close()


def test_close_a_breaker(watched, admin_login, acme):
    from integrations.models import CircuitBreaker

    page = watched
    breaker = breaker_opened("trello", acme.region.code)
    CircuitBreaker.objects.filter(pk=breaker.pk).update(last_error="HTTP 502: Bad Gateway")
    admin_login(username="ops-ben")
    page.goto(f"{page.base_url}/admin/integrations/circuitbreaker/")
    page.click(f"#result_list a[href$='/circuitbreaker/{breaker.pk}/change/']")
    page.wait_for_selector("#sy-breaker")
    assert "Open" in page.inner_text("#sy-breaker")
    page.click("a.sy-close-link")
    page.fill("#id_reason", "Trello status page says resolved")
    page.click('input[type=submit][value="Yes, I\'m sure"]')
    page.wait_for_selector("text=Closed trello")
    breaker.refresh_from_db()
    assert breaker.state == "closed" and breaker.first_opened_at is None
    assert "ops-ben" in page.inner_text("#sy-audit")


def test_dashboard_shows_an_open_breaker_and_leads_to_the_deliveries_it_holds(
    watched, admin_login, acme
):
    from integrations.models import CircuitBreaker, Delivery

    page = watched
    now = timezone.now()
    held = [
        Delivery.objects.create(
            customer=acme,
            action="workflow.proceed",
            provider_key="trello",
            operation="move_card",
            input={"card_id": CARD},
            attempt_limit=5,
            next_attempt_at=now + timezone.timedelta(seconds=300),
            last_error="Deferred: the circuit breaker of trello/eu is open (HTTP 502)",
        )
        for _ in range(2)
    ]
    breaker = CircuitBreaker.objects.create(
        provider_key="trello",
        region="eu",
        state="open",
        failing_deliveries=[held[0].pk],
        first_opened_at=now - timezone.timedelta(minutes=42),
        opened_at=now,
        open_until=now + timezone.timedelta(seconds=300),
    )
    admin_login(username="ops-cleo")
    card = page.locator("#sy-dash-breakers")
    assert "trello/eu Open" in card.inner_text() and "since" in card.inner_text()
    page.click("#sy-dash-breakers a:has-text('2 held')")
    page.wait_for_selector("#result_list")
    assert f"held_by={breaker.pk}" in page.url
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    listed = page.inner_text("#result_list")
    assert all(f"{d.pk}" in listed for d in held)
