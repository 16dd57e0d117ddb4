"""A fake provider server speaking the documented shapes of every provider on localhost.

``manage.py fakeprovider --port 9100`` serves it; tests start it in a thread with
``FakeProviderServer.start()``. Each provider lives under ``/<provider key>/`` so an integration's
``base_url`` of ``http://127.0.0.1:9100/<key>`` points a customer at it (DESIGN.md §7a).

Control endpoints: ``POST /_faults``, ``POST /_limits``, ``GET /_journal``, ``POST /_reset``.
HTTP/1.1 keep-alive is on, and every journal entry names its TCP connection, so connection
reuse by the client is observable."""

from devtools.fakeprovider.client import FakeProviderClient
from devtools.fakeprovider.server import FakeProviderServer
from devtools.fakeprovider.state import FakeProviderState

__all__ = ("FakeProviderClient", "FakeProviderServer", "FakeProviderState")
