import pytest

from integrations.deliveries import services
from integrations.models import Delivery
from integrations.tasks import worker_heartbeat

pytestmark = pytest.mark.django_db


def test_admin_index_shows_queue_dead_letters_and_worker(admin_client, acme):
    for n in range(2):
        services.delivery_create(
            api_key=None,
            customer="acme",
            action="trello.move_card",
            input={"card_id": "5abbe4b7ddc1b351ef961414", "list_id": f"{n:024x}"},
        )
    Delivery.objects.filter(pk=Delivery.objects.first().pk).update(status="dead")
    worker_heartbeat()
    html = admin_client.get("/admin/").content.decode()
    assert 'id="switchyard-dashboard"' in html
    assert "Queued deliveries" in html and "Dead letters" in html
    assert "/admin/integrations/deadletter/" in html
    assert "s ago" in html  # worker heartbeat age
    assert "Customers" in html  # the usual app list is still there
