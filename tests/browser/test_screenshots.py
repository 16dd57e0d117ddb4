"""Every admin screen opened in Chromium: each registered model's list, add form and the page
of one of its rows, plus the console's own pages (confirmations, rotation). Each must answer
without an HTTP error or a JS error. With SWITCHYARD_SCREENSHOTS_DIR set (``make
screenshots``: var/screenshots/) each screen is also saved as a full-page PNG."""

import os
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from tests.browser.fixtures import trello_dead_letter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SWITCHYARD_SCREENSHOTS_DIR", "")


def _seed(acme, fake_provider):
    """One row of every kind an operator looks at."""
    from credentials.services import credential_create
    from integrations.models import CircuitBreaker
    from webhooks.models import InboundEvent
    from webhooks.services import endpoint_create, subscription_create

    delivery = trello_dead_letter(acme, fake_provider)
    # The dead letter's 503 already counted a failure: open that breaker.
    CircuitBreaker.objects.update_or_create(
        provider_key="trello",
        region=acme.region.code,
        defaults={
            "state": "open",
            "failing_deliveries": [delivery.pk],
            "opened_at": timezone.now(),
            "first_opened_at": timezone.now(),
            "open_until": timezone.now() + timezone.timedelta(seconds=300),
            "last_error": "HTTP 502: Bad Gateway",
        },
    )
    signing = credential_create(
        provider="shopify",
        purpose="webhook_signing",
        customer=acme,
        fields={"secret": "shpss_" + "o" * 32},
    )
    endpoint = endpoint_create(customer=acme, provider="shopify", credential=signing)
    InboundEvent.objects.create(
        endpoint=endpoint,
        provider="shopify",
        external_id="evt-1",
        type="shopify.products.update",
        body=b'{"id": 1}',
        status="dead",
        attempt_limit=5,
        error="Normalisation failed: no product",
    )
    subscription, _ = subscription_create(
        url="http://127.0.0.1:9/hooks", event_types=["*"], allow_private=True
    )
    return {"delivery": delivery, "subscription": subscription}


def _screens(seeded) -> list[tuple[str, str]]:
    screens = [("index", reverse("admin:index"))]
    for model in admin.site._registry:
        opts = model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        screens.append((f"{name}_list", reverse(f"admin:{name}_changelist")))
        screens.append((f"{name}_add", reverse(f"admin:{name}_add")))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            screens.append((f"{name}_change", reverse(f"admin:{name}_change", args=[first.pk])))
    delivery, subscription = seeded["delivery"].pk, seeded["subscription"].pk
    for name, url_name, pk in (
        ("delivery_retry_confirm", "integrations_delivery_retry", delivery),
        ("delivery_cancel_confirm", "integrations_delivery_cancel", delivery),
        ("subscription_test_confirm", "webhooks_subscription_test", subscription),
        ("subscription_rotate", "webhooks_subscription_rotate", subscription),
    ):
        screens.append((name, reverse(f"admin:{url_name}", args=[pk])))
    return screens


def test_every_admin_screen_opens_cleanly(page, admin_login, acme, globex, fake_provider):
    seeded = _seed(acme, fake_provider)
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"JS error on {page.url}: {exc}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} {r.url}"))
    admin_login()
    page.set_viewport_size({"width": 1440, "height": 900})
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for name, url in _screens(seeded):
        response = page.goto(f"{page.base_url}{url}")
        if response.status == 403 and name.endswith("_add"):
            problems.pop()  # logs and read-only screens have no add form, by design
            continue
        assert response.status == 200, (name, response.status)
        assert page.title().strip(), f"{name} has an empty <title>"
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
    assert problems == []
