from django.contrib import admin
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health
from config.api.problems import MACHINE_PREFIXES, problem_response

admin.site.site_header = "Switchyard"
admin.site.site_title = "Switchyard admin"
admin.site.index_title = "Operations"

# Deliveries first: POST deliveries/ is the API's hot path, and each pattern before it is tried
# on every request. No two includes share a path, so the order answers nothing else.
api_v1 = [
    path("", include("integrations.deliveries.api.urls")),
    path("", include("customers.api.urls")),
    path("", include("credentials.api.urls")),
    path("", include("integrations.api.urls")),
    path("", include("webhooks.api.urls")),
]

urlpatterns = [
    # OAuth 2.0 Connect pages (staff only) sit beside the admin's own; before it, which would
    # otherwise answer every admin/ path.
    path("admin/oauth/", include("integrations.oauth_connect_admin")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("webhooks/", include("webhooks.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]


def handler404(request, exception=None):
    if request.path.startswith(MACHINE_PREFIXES):
        return problem_response(404, "not-found", f"No resource at {request.path}.")
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith(MACHINE_PREFIXES):
        return problem_response(500, "server-error", "Unexpected server error; it has been logged.")
    return defaults.server_error(request)
