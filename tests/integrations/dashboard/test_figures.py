"""The dashboard's figures against a seeded data set: exact numbers per window, each linked to
the list that shows the same rows."""

import re

import pytest

from integrations.dashboard import dashboard
from integrations.dashboard.rollups import counters_advance, delivery_rollups_advance
from integrations.models import DeliveryRollup
from tests.integrations.dashboard.seed import seed_operations, seed_traffic
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def _figures(board, key):
    return {f.label: f for s in board.sections if s.key == key for f in s.figures}


def _groups(groups):
    return {g.label: (g.attempts, g.success_rate, g.p50, g.p95) for g in groups}


@pytest.mark.parametrize(
    ("window", "total", "providers", "customers"),
    [
        (
            "1h",
            (4, "75.0 %", "≤ 100 ms", "≤ 5000 ms"),
            {"trello": (4, "75.0 %", "≤ 100 ms", "≤ 5000 ms")},
            {"acme": (4, "75.0 %", "≤ 100 ms", "≤ 5000 ms")},
        ),
        (
            "24h",
            (6, "66.7 %", "≤ 100 ms", "≤ 5000 ms"),
            {
                "stripe": (2, "50.0 %", "≤ 250 ms", "≤ 1000 ms"),
                "trello": (4, "75.0 %", "≤ 100 ms", "≤ 5000 ms"),
            },
            {
                "acme": (4, "75.0 %", "≤ 100 ms", "≤ 5000 ms"),
                "globex": (2, "50.0 %", "≤ 250 ms", "≤ 1000 ms"),
            },
        ),
        (
            "7d",
            (7, "71.4 %", "≤ 100 ms", "≤ 5000 ms"),
            {
                "stripe": (2, "50.0 %", "≤ 250 ms", "≤ 1000 ms"),
                "trello": (5, "80.0 %", "≤ 100 ms", "≤ 5000 ms"),
            },
            {
                "acme": (4, "75.0 %", "≤ 100 ms", "≤ 5000 ms"),
                "globex": (3, "66.7 %", "≤ 250 ms", "≤ 1000 ms"),
            },
        ),
    ],
)
def test_traffic_per_provider_and_customer(acme, globex, window, total, providers, customers):
    seed_traffic(acme, globex)
    seen = dashboard(window).traffic
    assert _groups([seen.total])["All"] == total
    assert _groups(seen.providers) == providers
    assert _groups(seen.customers) == customers
    assert sum(seen.attempts) == total[0]
    assert sum(seen.attempts) - sum(seen.failed) == round(total[0] * float(total[1][:-2]) / 100)


def test_rollup_counts_each_attempt_once(acme, globex):
    seed_traffic(acme, globex)
    delivery_rollups_advance()
    delivery_rollups_advance()
    hours = DeliveryRollup.objects.filter(span=DeliveryRollup.Span.HOUR)
    assert sum(r.attempts for r in hours) == 8
    assert sum(sum(r.latency) for r in hours) == 8
    assert sum(r.duration_ms for r in hours) == 40 + 80 + 90 + 3000 + 200 + 600 + 20 + 20


def test_operations_figures(acme, globex):
    breaker, _ = seed_operations(acme, globex)
    board = dashboard("24h")
    queue = _figures(board, "queue")
    assert queue["Queued"].value == "3"
    assert queue["Due now"].value == "2"
    assert 120 <= int(re.match(r"(\d+) s late", queue["Oldest due"].value).group(1)) < 180
    assert queue["In flight"].value == "1"
    [held] = _figures(board, "breakers").values()
    assert held.label == "trello/eu Open" and held.value == "2 held" and held.alarm
    assert held.link.endswith(f"?held_by={breaker.pk}") and held.note.startswith("since ")
    dead = _figures(board, "dead_letters")
    assert dead["Dead letters"].value == "2" and dead["New in 24 h"].value == "2"
    assert _figures(dashboard("1h"), "dead_letters")["New in 1 h"].value == "1"
    [used] = _figures(board, "credentials").values()
    assert used.alarm and "trello" in used.label and used.label.endswith("v1")
    beats = _figures(board, "heartbeats")
    assert beats["Worker heartbeat"].value.endswith("s ago")
    assert not beats["Worker heartbeat"].alarm
    assert beats["Dispatcher heartbeat"].value == "never" and beats["Dispatcher heartbeat"].alarm
    inbound = _figures(board, "inbound")
    assert inbound["Inbound dead letters"].value == "2"
    assert inbound["New in 24 h"].value == "1"
    assert inbound["Rejected signatures in 24 h"].value == "0"


def test_rejected_signatures_are_rolled_up_from_the_endpoints_counter(acme, globex):
    _, endpoint = seed_operations(acme, globex)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(rejected_signatures=5)
    counters_advance()  # the first run only takes the base
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(rejected_signatures=8)
    counters_advance()
    figure = _figures(dashboard("1h"), "inbound")["Rejected signatures in 1 h"]
    assert figure.value == "3" and figure.alarm
    assert figure.note.startswith("8 since")


def test_every_figure_links_to_a_list_that_shows_it(admin_client, acme, globex):
    breaker, _ = seed_operations(acme, globex)
    seed_traffic(acme, globex)
    board = dashboard("24h")
    links = [f.link for s in board.sections for f in s.figures]
    links += [g.link for g in [board.traffic.total, *board.traffic.providers]]
    links += [g.link for g in board.traffic.customers]
    assert all(links)
    for link in links:
        response = admin_client.get(link)
        # An unknown filter parameter would redirect to "?e=1": every one is applied.
        assert response.status_code == 200, link
    held = admin_client.get(f"/admin/integrations/delivery/?held_by={breaker.pk}")
    assert len(held.context["cl"].result_list) == 2
    due = admin_client.get(_figures(board, "queue")["Due now"].link)
    assert due.context["cl"].result_count == 2
    per_customer = admin_client.get(board.traffic.customers[0].link)
    assert per_customer.context["cl"].result_count >= 1


def test_admin_index_renders_the_dashboard(admin_client, acme, globex):
    seed_operations(acme, globex)
    seed_traffic(acme, globex)
    html = admin_client.get("/admin/?window=1h").content.decode()
    assert 'id="switchyard-dashboard"' in html and "<svg" in html
    assert "Attempts over 1 h" in html and "75.0 %" in html
    assert "trello/eu Open" in html and "2 held" in html
    assert 'aria-current="true">1 h<' in html
    assert "Customers" in html  # the app list is still there
