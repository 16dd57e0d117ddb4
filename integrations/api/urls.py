from django.urls import path

from config.api.routers import ApiRouter
from integrations.api.breakers import BreakerListView
from integrations.api.views import ActionValidateView, IntegrationViewSet, ProviderCatalogueView

router = ApiRouter()
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = [
    path("providers/", ProviderCatalogueView.as_view(), name="provider-list"),
    path("actions/validate/", ActionValidateView.as_view(), name="action-validate"),
    path("breakers/", BreakerListView.as_view(), name="breaker-list"),
    *router.urls,
]
