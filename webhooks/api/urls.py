from rest_framework.routers import SimpleRouter

from webhooks.api.views import InboundEventViewSet, SubscriptionViewSet, WebhookEndpointViewSet

router = SimpleRouter()
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("inbound-events", InboundEventViewSet, basename="inbound-event")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")

urlpatterns = router.urls
