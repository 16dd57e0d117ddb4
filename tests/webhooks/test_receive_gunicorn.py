"""The receiver behind gunicorn, as in production: a chunked body (no Content-Length) sent over a
real socket is de-chunked by gunicorn and read with the size limit enforced."""

import http.client
from urllib.parse import urlsplit

import pytest

from tests.integrations.providers.helpers import fixture_bytes
from tests.processes import ProcessStack, free_port
from tests.webhooks.conftest import FIXTURES, signed_headers
from webhooks.models import InboundEvent

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

LIMIT = 4096


@pytest.fixture(scope="module")
def web_url(django_db_setup, django_db_blocker, tmp_path_factory):
    stack = ProcessStack.on_test_database(
        tmp_path_factory.mktemp("gunicorn"), SWITCHYARD_MAX_BODY_BYTES=str(LIMIT)
    )
    try:
        yield stack.start_web(free_port(), workers=1)
    finally:
        stack.stop()


def _post(web_url: str, endpoint, body: bytes, *, chunked: bool) -> http.client.HTTPResponse:
    """POST signed bytes; chunked, http.client sends Transfer-Encoding: chunked and no
    Content-Length, in 1 KiB chunks."""
    url = urlsplit(web_url)
    headers = {
        "Content-Type": "application/json",
        **signed_headers(endpoint.provider, body, web_url + endpoint.path),
    }
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    if chunked:
        chunks = (body[i : i + 1024] for i in range(0, len(body), 1024))
        connection.request("POST", endpoint.path, body=chunks, headers=headers)
    else:
        connection.request("POST", endpoint.path, body=body, headers=headers)
    response = connection.getresponse()
    response.content = response.read()
    connection.close()
    return response


def test_chunked_webhook_is_accepted(web_url, make_endpoint):
    endpoint = make_endpoint("shopify")
    body = fixture_bytes("shopify", FIXTURES["shopify"][0])
    response = _post(web_url, endpoint, body, chunked=True)
    assert response.status == 202, response.content
    event = InboundEvent.objects.get()
    assert bytes(event.body) == body
    assert event.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in event.headers


def test_chunked_body_over_the_limit_gets_413_like_a_content_length(web_url, make_endpoint):
    endpoint = make_endpoint("shopify")
    body = b'{"pad": "' + b"x" * (3 * LIMIT) + b'"}'
    chunked = _post(web_url, endpoint, body, chunked=True)
    sized = _post(web_url, endpoint, body, chunked=False)
    for response in (chunked, sized):
        assert response.status == 413, response.content
        assert response.getheader("Content-Type") == "application/problem+json"
        assert b"payload-too-large" in response.content
    assert not InboundEvent.objects.exists()
    endpoint.refresh_from_db()
    assert endpoint.rejected_signatures == 0
