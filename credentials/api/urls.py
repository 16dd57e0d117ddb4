from rest_framework.routers import SimpleRouter

from credentials.api.views import CredentialViewSet

router = SimpleRouter()
router.register("credentials", CredentialViewSet, basename="credential")

urlpatterns = router.urls
