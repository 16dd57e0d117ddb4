from config.api.routers import ApiRouter
from credentials.api.views import CredentialViewSet

router = ApiRouter()
router.register("credentials", CredentialViewSet, basename="credential")

urlpatterns = router.urls
