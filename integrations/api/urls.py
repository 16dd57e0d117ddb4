from django.urls import path
from rest_framework.routers import SimpleRouter

from integrations.api.views import ActionValidateView, IntegrationViewSet, ProviderCatalogueView

router = SimpleRouter()
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = [
    path("providers/", ProviderCatalogueView.as_view(), name="provider-list"),
    path("actions/validate/", ActionValidateView.as_view(), name="action-validate"),
    *router.urls,
]
