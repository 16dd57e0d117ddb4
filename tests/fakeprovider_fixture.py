"""pytest plugin: ``fake_provider``, a fake provider server running in a thread for the session,
reset before each test. Yields a ``FakeProviderClient`` (``.url``, ``.reset()``, ``.fault(**kw)``,
``.limit(**kw)``, ``.journal()``)."""

import pytest

from devtools.fakeprovider import FakeProviderClient, FakeProviderServer


@pytest.fixture(scope="session")
def _fake_provider_server():
    server = FakeProviderServer.start()
    yield server
    server.stop()


@pytest.fixture
def fake_provider(_fake_provider_server):
    client = FakeProviderClient(_fake_provider_server.url)
    client.reset()
    yield client
    client.close()
