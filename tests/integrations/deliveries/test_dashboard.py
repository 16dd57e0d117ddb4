import pytest

from integrations.tasks import worker_heartbeat

pytestmark = pytest.mark.django_db


def test_admin_index_shows_queue_dead_letters_and_worker(admin_client, two_pending_one_dead):
    worker_heartbeat()
    html = admin_client.get("/admin/").content.decode()
    assert 'id="switchyard-dashboard"' in html
    assert "Queued" in html and "Dead letters" in html
    assert "/admin/integrations/deadletter/" in html
    assert "⚠ 1" in html  # one dead letter raises the alarm
    assert "s ago" in html  # worker heartbeat age
    assert "Customers" in html  # the usual app list is still there
