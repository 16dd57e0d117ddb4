import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests


def _put_card(url, session=None, card="c1"):
    client = session or requests
    return client.put(
        f"{url}/trello/1/cards/{card}",
        params={"key": "k", "token": "t"},
        json={"idList": "5abbe4b7ddc1b351ef961412"},
        timeout=5,
    )


def test_journal_records_prefix_path_query_body_connection_and_status(fake_provider):
    response = _put_card(fake_provider.url)
    assert response.json()["idList"] == "5abbe4b7ddc1b351ef961412"
    [entry] = fake_provider.journal()
    assert entry["method"] == "PUT"
    assert entry["path"] == "/trello/1/cards/c1"
    assert entry["query"] == {"key": "k", "token": "t"}
    assert entry["body"] == '{"idList": "5abbe4b7ddc1b351ef961412"}'
    assert entry["status"] == 200
    assert isinstance(entry["connection"], int) and entry["at"] <= time.time()
    assert entry["headers"]["Content-Type"] == "application/json"


def test_connection_reuse_is_visible(fake_provider):
    with requests.Session() as session:
        _put_card(fake_provider.url, session)
        _put_card(fake_provider.url, session)
    _put_card(fake_provider.url)
    first, second, third = (e["connection"] for e in fake_provider.journal())
    assert first == second != third


def test_fault_count_applies_to_next_n_matching_requests(fake_provider):
    fake_provider.fault(path_prefix="/trello/", status=500, count=2, retry_after=5)
    statuses = [_put_card(fake_provider.url) for _ in range(3)]
    assert [r.status_code for r in statuses] == [500, 500, 200]
    assert statuses[0].headers["Retry-After"] == "5"
    assert [e["status"] for e in fake_provider.journal()] == [500, 500, 200]
    # Other prefixes are untouched.
    assert requests.get(f"{fake_provider.url}/selenium/status", timeout=5).status_code == 200


def test_latency_only_fault_answers_normally_after_the_delay(fake_provider):
    fake_provider.fault(path_prefix="/selenium/", latency_ms=200, count=1)
    started = time.monotonic()
    response = requests.get(f"{fake_provider.url}/selenium/status", timeout=5)
    assert response.status_code == 200 and time.monotonic() - started >= 0.2


def test_drop_connection(fake_provider):
    fake_provider.fault(path_prefix="/miro/", drop_connection=True, count=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{fake_provider.url}/miro/v2/boards/b", timeout=5)
    [entry] = fake_provider.journal()
    assert entry["status"] is None


def test_failure_rate_fails_a_share(fake_provider):
    fake_provider.fault(path_prefix="/http/", status=503, failure_rate=0.5)
    codes = [requests.get(f"{fake_provider.url}/http/x", timeout=5).status_code for _ in range(60)]
    assert 0 < codes.count(503) < 60 and set(codes) == {200, 503}


def test_trello_limit_answers_with_its_documented_429(fake_provider):
    fake_provider.limit(path_prefix="/trello/", rate=2, per_seconds=60)
    responses = [_put_card(fake_provider.url) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].json() == {
        "error": "API_TOKEN_LIMIT_EXCEEDED",
        "message": "Rate limit exceeded",
    }
    assert "Retry-After" not in responses[2].headers


def test_shopify_limit_sends_retry_after_and_call_limit(fake_provider):
    fake_provider.limit(path_prefix="/shopify/", rate=2, per_seconds=1)
    url = f"{fake_provider.url}/shopify/admin/api/2025-01/shop.json"
    headers = {"X-Shopify-Access-Token": "x"}
    answers = [requests.get(url, headers=headers, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["X-Shopify-Shop-Api-Call-Limit"] == "2/2"
    assert 0 < float(answers[2].headers["Retry-After"]) <= 1
    assert "Exceeded 2 calls per second" in answers[2].json()["errors"]


def test_miro_limit_sends_rate_limit_headers(fake_provider):
    fake_provider.limit(path_prefix="/miro/", rate=1, per_seconds=60)
    url = f"{fake_provider.url}/miro/v2/boards/b1"
    headers = {"Authorization": "Bearer x"}
    ok, limited = (requests.get(url, headers=headers, timeout=5) for _ in range(2))
    assert ok.status_code == 200 and ok.headers["X-RateLimit-Remaining"] == "0"
    assert limited.status_code == 429 and limited.json()["code"] == "tooManyRequests"
    assert int(limited.headers["X-RateLimit-Reset"]) > time.time()


def test_reset_clears_journal_faults_and_limits(fake_provider):
    fake_provider.fault(path_prefix="/trello/", status=500)
    fake_provider.limit(path_prefix="/trello/", rate=1, per_seconds=60)
    _put_card(fake_provider.url)
    fake_provider.reset()
    assert fake_provider.journal() == []
    assert _put_card(fake_provider.url).status_code == 200
    assert _put_card(fake_provider.url).status_code == 200


def test_a_request_held_across_a_reset_is_dropped_and_counts_against_no_later_limit(
    fake_provider,
):
    fake_provider.fault(path_prefix="/trello/", latency_ms=500, count=1)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(_put_card, fake_provider.url, None, "held")
        deadline = time.monotonic() + 5
        while not fake_provider.journal() and time.monotonic() < deadline:
            time.sleep(0.01)
        fake_provider.reset()  # the next test begins while the request is held
        fake_provider.limit(path_prefix="/trello/", rate=1, per_seconds=60)
        with pytest.raises(requests.ConnectionError):
            held.result()
    assert _put_card(fake_provider.url).status_code == 200
    assert fake_provider.journal()[0]["path"] == "/trello/1/cards/c1"


def test_bad_control_input_is_400(fake_provider):
    response = requests.post(f"{fake_provider.url}/_faults", json={"nope": 1}, timeout=5)
    assert response.status_code == 400
