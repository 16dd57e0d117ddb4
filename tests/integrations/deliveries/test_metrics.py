import pytest

pytestmark = pytest.mark.django_db


def test_metrics_report_queue_and_dead_letters(client, two_pending_one_dead):
    text = client.get("/metrics").content.decode()
    assert 'switchyard_deliveries{status="pending"} 2.0' in text
    assert 'switchyard_deliveries{status="dead"} 1.0' in text
    assert "switchyard_deliveries_due 2.0" in text
