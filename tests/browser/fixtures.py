"""Playwright driving Debian's chromium, headless, against pytest-django's live server."""

import os
import shutil
import tempfile

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (make test installs it where it can)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls
    # are still synchronous, so Django's async-safety guard must be told so.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with (
        tempfile.TemporaryDirectory(prefix="switchyard-chromium-") as profile,
        sync_api.sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield context
        context.close()


@pytest.fixture
def page(chromium, live_server):
    page = chromium.new_page()
    page.set_default_timeout(15_000)
    page.base_url = live_server.url
    yield page
    page.close()
    chromium.clear_cookies()


@pytest.fixture
def admin_login(page, django_user_model):
    """Log in to the admin as a superuser through the real login form."""

    def login(username="admin", password="s3cret-Passw0rd", **extra):
        if not django_user_model.objects.filter(username=username).exists():
            django_user_model.objects.create_superuser(
                username, f"{username}@example.com", password, **extra
            )
        page.goto(f"{page.base_url}/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        return page

    return login


CARD = "5abbe4b7ddc1b351ef961414"


def trello_dead_letter(customer, fake_provider):
    """A ``workflow.proceed`` delivery for ``customer`` that dead-lettered: the fake Trello is
    down for the first call and the integration allows one attempt (queued tasks run inline)."""
    from credentials.services import credential_create
    from integrations.deliveries.services import delivery_create
    from integrations.services import integration_create

    credential_create(
        provider="trello",
        purpose="api",
        customer=customer,
        fields={"api_key": "a" * 32, "token": "b" * 64},
    )
    integration_create(
        customer=customer,
        provider_key="trello",
        config={
            "base_url": f"{fake_provider.url}/trello",
            "stages": {"done": "5abbe4b7ddc1b351ef9614a2"},
            "retry": {"max_attempts": 1},
        },
    )
    fake_provider.fault(path_prefix="/trello/", status=503, count=1)
    delivery, _ = delivery_create(
        api_key=None,
        customer=customer.slug,
        action="workflow.proceed",
        input={"item": CARD, "to": "done"},
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.dead_reason) == ("dead", "attempts_exhausted")
    return delivery
