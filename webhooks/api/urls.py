from config.api.routers import ApiRouter
from webhooks.api.views import InboundEventViewSet, SubscriptionViewSet, WebhookEndpointViewSet

router = ApiRouter()
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("inbound-events", InboundEventViewSet, basename="inbound-event")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")

urlpatterns = router.urls
