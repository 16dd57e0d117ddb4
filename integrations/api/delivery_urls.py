from django.urls import path

from config.api.routers import ApiRouter
from integrations.api.breakers import BreakerListView
from integrations.api.deliveries import DeadLetterViewSet, DeliveryViewSet

router = ApiRouter()
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")

urlpatterns = [
    path("breakers/", BreakerListView.as_view(), name="breaker-list"),
    *router.urls,
]
