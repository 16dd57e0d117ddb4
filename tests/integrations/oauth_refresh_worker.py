"""What one worker process does in the multi-process refresh test (tests/integrations/
test_oauth.py), run with ``manage.py shell -c`` on the test's database: read the
customer's Miro token (due), say it is ready, wait for the signal, then ask for a fresh token as a
delivery would. It prints the version it ended with and a digest of its access token (never the
token)."""

import hashlib
import json
import time
from pathlib import Path

from credentials.services import credential_resolve
from customers.models import Customer
from integrations.oauth import oauth_token_fresh

__all__ = ("RESULT_PREFIX", "refresh_on_signal")

RESULT_PREFIX = "REFRESH-RESULT "
# How long a worker waits for the signal before giving up (the test has failed by then).
SIGNAL_TIMEOUT_SECONDS = 90.0


def refresh_on_signal(*, customer: str, base_url: str, ready: str, go: str) -> None:
    owner = Customer.objects.select_related("region").get(slug=customer)
    resolved = credential_resolve(provider="miro", customer=owner)
    Path(ready).touch()
    deadline = time.monotonic() + SIGNAL_TIMEOUT_SECONDS
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no signal to refresh")
        time.sleep(0.005)
    fresh = oauth_token_fresh(
        provider_key="miro",
        customer=owner,
        resolved=resolved,
        config={"base_url": base_url},
        trusted=True,
    )
    digest = hashlib.sha256(fresh.fields["access_token"].encode()).hexdigest()
    result = {"held": resolved.version, "version": fresh.version, "access_token_sha256": digest}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
