from rest_framework.routers import SimpleRouter

from integrations.api.deliveries import DeadLetterViewSet, DeliveryViewSet

router = SimpleRouter()
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")

urlpatterns = router.urls
