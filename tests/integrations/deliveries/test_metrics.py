import pytest

from integrations.deliveries import services
from integrations.models import Delivery

pytestmark = pytest.mark.django_db


def test_metrics_report_queue_and_dead_letters(client, acme):
    for n in range(3):
        services.delivery_create(
            api_key=None,
            customer="acme",
            action="trello.move_card",
            input={"card_id": "5abbe4b7ddc1b351ef961414", "list_id": f"{n:024x}"},
        )
    Delivery.objects.filter(pk=Delivery.objects.first().pk).update(status="dead")
    text = client.get("/metrics").content.decode()
    assert 'switchyard_deliveries{status="pending"} 2.0' in text
    assert 'switchyard_deliveries{status="dead"} 1.0' in text
    assert "switchyard_deliveries_due 2.0" in text
