from config.api.routers import ApiRouter
from customers.api.views import CustomerViewSet, RegionViewSet

router = ApiRouter()
router.register("regions", RegionViewSet, basename="region")
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = router.urls
