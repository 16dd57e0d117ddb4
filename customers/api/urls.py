from rest_framework.routers import SimpleRouter

from customers.api.views import CustomerViewSet, RegionViewSet

router = SimpleRouter()
router.register("regions", RegionViewSet, basename="region")
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = router.urls
