from config.api.routers import ApiRouter
from integrations.deliveries.api.views import DeadLetterViewSet, DeliveryViewSet

router = ApiRouter()
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")

urlpatterns = router.urls
